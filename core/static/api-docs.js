// Shrooms — a small OpenAPI 3 viewer, no dependencies. It reads the document
// named by data-spec on #api-docs and lists the operations by tag, with
// their parameters, request and response schemas, then the shared schemas.
// Texts come from data-i18n-* attributes (translated by the server). All
// content is built with DOM calls: nothing from the document is parsed as HTML.
(function () {
  "use strict";

  var root = document.getElementById("api-docs");
  if (!root) return;
  var specUrl = root.getAttribute("data-spec") || "/api/v1/openapi.json";
  var METHODS = ["get", "put", "post", "patch", "delete", "head", "options", "trace"];
  var spec = null;

  var COLON = document.documentElement.lang === "fr" ? " : " : ": ";

  function firstSentence(text) {
    if (!text) return "";
    var line = String(text).split("\n")[0];
    var m = /^(.+?[.!?])(\s|$)/.exec(line);
    return m ? m[1] : line;
  }

  function tr(name, fallback) {
    return root.getAttribute("data-i18n-" + name) || fallback;
  }

  // el("tag.class1.class2", {attr: value}, children...) — children are nodes or strings.
  function el(tagSpec, attrs) {
    var parts = tagSpec.split(".");
    var node = document.createElement(parts[0]);
    if (parts.length > 1) node.className = parts.slice(1).join(" ");
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") node.textContent = v;
        else node.setAttribute(k, v === true ? "" : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }

  function slug(s) {
    return String(s).toLowerCase().replace(/[^a-z0-9_]+/g, "-").replace(/^-|-$/g, "") || "x";
  }

  // Paragraphs from a description; blank lines separate paragraphs, `code` spans kept as <code>.
  function prose(text, cls) {
    if (!text) return null;
    var box = el("div." + (cls || "api-prose"));
    String(text).split(/\n\s*\n/).forEach(function (para) {
      var p = el("p");
      para.split(/(`[^`]+`)/).forEach(function (piece) {
        if (/^`[^`]+`$/.test(piece)) append(p, el("code", { text: piece.slice(1, -1) }));
        else append(p, piece);
      });
      box.appendChild(p);
    });
    return box;
  }

  function refName(ref) {
    var m = /^#\/components\/schemas\/(.+)$/.exec(ref || "");
    return m ? decodeURIComponent(m[1].replace(/~1/g, "/").replace(/~0/g, "~")) : ref;
  }

  function schemaRef(name) {
    return el("a.api-ref", { href: "#schema-" + slug(name), text: name });
  }

  // A one-line type: string, integer (int64), array of Person, Person | null...
  function typeLabel(s) {
    if (!s) return ["any"];
    if (s.$ref) return [schemaRef(refName(s.$ref))];
    var alts = s.oneOf || s.anyOf;
    if (alts) {
      var out = [];
      alts.forEach(function (a, i) {
        if (i) out.push(" | ");
        out = out.concat(typeLabel(a));
      });
      return out;
    }
    if (s.allOf && s.allOf.length === 1) return typeLabel(s.allOf[0]);
    var t = s.type;
    var types = Array.isArray(t) ? t : (t ? [t] : []);
    var nullable = s.nullable || types.indexOf("null") >= 0;
    types = types.filter(function (x) { return x !== "null"; });
    var label = [];
    if (types.indexOf("array") >= 0 || (!types.length && s.items)) {
      label.push("array<");
      label = label.concat(typeLabel(s.items));
      label.push(">");
    } else if (types.length) {
      label.push(types.join(" | ") + (s.format ? " (" + s.format + ")" : ""));
    } else if (s.properties || s.additionalProperties) {
      label.push("object");
    } else {
      label.push("any");
    }
    if (nullable) label.push(" | null");
    return label;
  }

  function constraints(s) {
    if (!s || s.$ref) return null;
    var bits = [];
    if (s.enum) bits.push("∈ {" + s.enum.map(function (v) { return JSON.stringify(v); }).join(", ") + "}");
    if (s.default !== undefined) bits.push("= " + JSON.stringify(s.default));
    if (s.minimum !== undefined) bits.push("≥ " + s.minimum);
    if (s.maximum !== undefined) bits.push("≤ " + s.maximum);
    if (s.minLength !== undefined) bits.push("min " + s.minLength);
    if (s.maxLength !== undefined) bits.push("max " + s.maxLength);
    if (s.pattern) bits.push("/" + s.pattern + "/");
    if (s.example !== undefined) bits.push("e.g. " + JSON.stringify(s.example));
    return bits.length ? el("span.api-constraints", { text: bits.join(" · ") }) : null;
  }

  // The fields of an object schema as a nested list; depth-limited, refs are links.
  function schemaBody(s, depth) {
    depth = depth || 0;
    if (!s) return el("p.api-muted", { text: "—" });
    if (s.$ref) return el("p", null, schemaRef(refName(s.$ref)));
    if (s.allOf) {
      return el("div", null, s.allOf.map(function (part) { return schemaBody(part, depth); }));
    }
    var alts = s.oneOf || s.anyOf;
    if (alts) {
      return el("ul.api-alts", null, alts.map(function (a) {
        return el("li", null, typeLabel(a), a.$ref || depth > 2 ? null : schemaBody(a, depth + 1));
      }));
    }
    var isArray = s.type === "array" || (Array.isArray(s.type) && s.type.indexOf("array") >= 0);
    if (isArray) {
      return el("div", null, el("p", null, typeLabel(s)),
        s.items && !s.items.$ref && depth < 3 && s.items.properties ? schemaBody(s.items, depth + 1) : null);
    }
    if (!s.properties) {
      return el("p", null, el("code", null, typeLabel(s)), " ", constraints(s), prose(s.description));
    }
    var required = s.required || [];
    var list = el("dl.api-fields");
    Object.keys(s.properties).forEach(function (name) {
      var p = s.properties[name];
      var dt = el("dt", null,
        el("code.api-field-name", { text: name }),
        " ",
        el("span.api-type", null, typeLabel(p)),
        required.indexOf(name) >= 0 ? el("span.api-required", { text: tr("required", "required") }) : null,
        p.deprecated ? el("span.api-deprecated", { text: tr("deprecated", "deprecated") }) : null);
      var dd = el("dd", null, constraints(p), prose(p.description));
      var inner = p.items && !p.items.$ref ? p.items : p;
      if (!inner.$ref && inner.properties && depth < 3) dd.appendChild(schemaBody(inner, depth + 1));
      list.appendChild(dt);
      list.appendChild(dd);
    });
    if (s.additionalProperties && typeof s.additionalProperties === "object") {
      list.appendChild(el("dt", null, el("code.api-field-name", { text: "*" }), " ",
        el("span.api-type", null, typeLabel(s.additionalProperties))));
      list.appendChild(el("dd"));
    }
    return el("div", null, prose(s.description), list);
  }

  function contentBlock(content) {
    if (!content) return null;
    return Object.keys(content).map(function (type) {
      var media = content[type] || {};
      return el("div.api-media", null,
        el("p.api-media-type", null, el("code", { text: type }), " — ", el("span.api-type", null, typeLabel(media.schema))),
        media.schema && !media.schema.$ref ? schemaBody(media.schema, 1) : null,
        media.example !== undefined ? el("pre.api-example", { text: JSON.stringify(media.example, null, 2) }) : null);
    });
  }

  function resolve(obj) {
    // Parameters, bodies and responses may be $refs into components.
    var guard = 0;
    while (obj && obj.$ref && guard++ < 5) {
      var path = obj.$ref.replace(/^#\//, "").split("/");
      var target = spec;
      for (var i = 0; i < path.length && target; i++) target = target[path[i].replace(/~1/g, "/").replace(/~0/g, "~")];
      obj = target;
    }
    return obj || {};
  }

  function parametersTable(params) {
    if (!params || !params.length) return null;
    var tbody = el("tbody");
    params.map(resolve).forEach(function (p) {
      tbody.appendChild(el("tr", null,
        el("td", null, el("code", { text: p.name }), p.required ? el("span.api-required", { text: tr("required", "required") }) : null),
        el("td", { text: p.in }),
        el("td", null, el("span.api-type", null, typeLabel(p.schema)), " ", constraints(p.schema)),
        el("td", null, prose(p.description) || "")));
    });
    return el("div.api-block", null,
      el("h4", { text: tr("parameters", "Parameters") }),
      el("div.api-table-wrap", null,
        el("table.api-table", null,
          el("thead", null, el("tr", null, el("th", { scope: "col", text: "name" }), el("th", { scope: "col", text: "in" }),
            el("th", { scope: "col", text: "type" }), el("th", { scope: "col", text: "" }))),
          tbody)));
  }

  function securityLine(op) {
    var sec = op.security !== undefined ? op.security : spec.security;
    if (!sec) return null;
    var names = [];
    sec.forEach(function (req) { Object.keys(req).forEach(function (k) { if (names.indexOf(k) < 0) names.push(k); }); });
    return el("p.api-security", null, el("strong", { text: tr("auth", "Authentication") + COLON }),
      names.length ? names.join(", ") : tr("none", "none"));
  }

  function securitySchemes() {
    var schemes = spec.components && spec.components.securitySchemes;
    if (!schemes || !Object.keys(schemes).length) return null;
    return el("p.api-security", null, el("strong", { text: tr("auth", "Authentication") + COLON }),
      Object.keys(schemes).map(function (name, i) {
        var s = schemes[name] || {};
        var what = [s.type, s.scheme, s.bearerFormat, s.in, s.name].filter(Boolean).join(" · ");
        return [i ? ", " : "", el("code", { text: name }), what ? " (" + what + ")" : ""];
      }));
  }

  function operation(method, path, op, pathParams) {
    var id = "op-" + slug(op.operationId || method + "-" + path);
    var params = (pathParams || []).concat(op.parameters || []);
    var details = el("details.api-op", { id: id, "data-search": (method + " " + path + " " + (op.summary || "") + " " + (op.operationId || "") + " " + (op.tags || []).join(" ")).toLowerCase() });
    var summary = el("summary", null,
      el("span.api-method.api-method-" + method, { text: method.toUpperCase() }),
      el("code.api-path", { text: path }),
      op.summary || op.description ? el("span.api-summary", { text: op.summary || firstSentence(op.description) }) : null,
      op.deprecated ? el("span.api-deprecated", { text: tr("deprecated", "deprecated") }) : null);
    details.appendChild(summary);
    var body = el("div.api-op-body", null, el("p.api-op-id", null, el("code", { text: method.toUpperCase() + " " + path }), op.operationId ? el("span.api-muted", { text: " · " + op.operationId }) : null),
      prose(op.description), securityLine(op), parametersTable(params));
    if (op.requestBody) {
      var rb = resolve(op.requestBody);
      body.appendChild(el("div.api-block", null,
        el("h4", null, tr("body", "Request body"), rb.required ? el("span.api-required", { text: tr("required", "required") }) : null),
        prose(rb.description), contentBlock(rb.content)));
    }
    if (op.responses) {
      var list = el("div.api-block", null, el("h4", { text: tr("responses", "Responses") }));
      Object.keys(op.responses).sort().forEach(function (code) {
        var r = resolve(op.responses[code]);
        var cls = "api-status api-status-" + String(code).charAt(0);
        list.appendChild(el("div.api-response", null,
          el("p", null, el("span", { class: cls, text: code }), " ", r.description || ""),
          contentBlock(r.content)));
      });
      body.appendChild(list);
    }
    details.appendChild(body);
    return details;
  }

  function render() {
    root.textContent = "";
    var info = spec.info || {};
    root.appendChild(el("div.api-info", null,
      el("p.api-title", null, el("strong", { text: info.title || "API" }), info.version ? el("span.api-version", { text: "v" + info.version }) : null),
      prose(info.description),
      securitySchemes()));

    // Group operations by their first tag, in the order of the document's tag list.
    var groups = {};
    var order = (spec.tags || []).map(function (t) { return t.name; });
    var tagInfo = {};
    (spec.tags || []).forEach(function (t) { tagInfo[t.name] = t; });
    var untagged = tr("untagged", "Other");
    Object.keys(spec.paths || {}).forEach(function (path) {
      var item = spec.paths[path] || {};
      METHODS.forEach(function (m) {
        if (!item[m]) return;
        var tag = (item[m].tags && item[m].tags[0]) || untagged;
        if (!groups[tag]) { groups[tag] = []; if (order.indexOf(tag) < 0) order.push(tag); }
        groups[tag].push(operation(m, path, item[m], item.parameters));
      });
    });
    order = order.filter(function (t) { return groups[t]; });

    var filterId = "api-filter";
    var filter = el("input", { type: "search", id: filterId, autocomplete: "off", spellcheck: "false", placeholder: "GET /api/v1/…" });
    var count = el("span.api-count", { role: "status" });
    root.appendChild(el("div.api-toolbar", null,
      el("label", { for: filterId, text: tr("filter", "Filter operations") }), filter, count));

    var toc = el("ul");
    order.forEach(function (tag) {
      toc.appendChild(el("li", { "data-tag": tag }, el("a", { href: "#tag-" + slug(tag) }, tag, " ", el("span.api-toc-count", { text: String(groups[tag].length) }))));
    });
    var hasSchemas = spec.components && spec.components.schemas && Object.keys(spec.components.schemas).length;
    if (hasSchemas) toc.appendChild(el("li", null, el("a", { href: "#api-schemas", text: tr("schemas", "Schemas") })));
    root.appendChild(el("nav.api-toc", { "aria-label": tr("contents", "Contents") }, toc));

    var sections = [];
    order.forEach(function (tag) {
      var section = el("section.api-tag", { id: "tag-" + slug(tag), "aria-labelledby": "tag-" + slug(tag) + "-title" },
        el("h2", { id: "tag-" + slug(tag) + "-title", text: tag }),
        tagInfo[tag] ? prose(tagInfo[tag].description) : null,
        groups[tag]);
      sections.push(section);
      root.appendChild(section);
    });

    if (hasSchemas) {
      var schemas = spec.components.schemas;
      var box = el("section.api-schemas", { id: "api-schemas", "aria-labelledby": "api-schemas-title" },
        el("h2", { id: "api-schemas-title", text: tr("schemas", "Schemas") }));
      Object.keys(schemas).sort().forEach(function (name) {
        box.appendChild(el("details.api-schema", { id: "schema-" + slug(name) },
          el("summary", null, el("code", { text: name }), " ", el("span.api-type", null, typeLabel(Object.assign({}, schemas[name], { $ref: undefined })))),
          el("div.api-op-body", null, schemaBody(schemas[name], 0))));
      });
      root.appendChild(box);
    }

    var ops = root.querySelectorAll(".api-op");
    function applyFilter() {
      var q = filter.value.trim().toLowerCase();
      var shown = 0;
      ops.forEach(function (op) {
        var hit = !q || q.split(/\s+/).every(function (w) { return op.getAttribute("data-search").indexOf(w) >= 0; });
        op.hidden = !hit;
        if (hit) shown++;
      });
      sections.forEach(function (s) {
        s.hidden = !s.querySelector(".api-op:not([hidden])");
      });
      count.textContent = shown + " / " + ops.length;
    }
    filter.addEventListener("input", applyFilter);
    applyFilter();

    // A link to #op-… or #schema-… opens its entry.
    function openHash() {
      var id = decodeURIComponent(location.hash.slice(1));
      if (!id) return;
      var target = document.getElementById(id);
      if (target && target.tagName === "DETAILS") {
        target.open = true;
        target.scrollIntoView();
      }
    }
    window.addEventListener("hashchange", openHash);
    openHash();
  }

  fetch(specUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(function (doc) {
      spec = doc;
      render();
    })
    .catch(function (e) {
      root.textContent = "";
      root.appendChild(el("div.alert.alert-error", { role: "alert" },
        el("p", { text: tr("error", "The API description could not be loaded.") + " (" + e.message + ")" })));
    });
})();
