//! `shrooms`: the one binary. Runs the server and the administration commands.
//! The list of modules of this build is `modules()`, below: one visible place.

use anyhow::Context;
use clap::{Parser, Subcommand};
use shrooms::modules;
use shrooms_core::{audit, identity, Config, Db};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "shrooms",
    version,
    about = "Shrooms: management for associations, cooperatives and small service companies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (embedded SQLite in SHROOMS_DATA unless SHROOMS_DATABASE_URL is set).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage instance administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Load a realistic demo data set (reproducible: same seed, same data).
    Demo {
        /// Number of people to create, spread over organisations of about 2,000 people.
        #[arg(long, default_value_t = 200)]
        scale: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Write a consistent snapshot of the database while the server runs.
    Backup {
        /// Output file (default: <data>/backups/shrooms-<time>.db or .pgdump).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Replace the database with a snapshot made by `backup` (stop the server first).
    Restore { file: PathBuf },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check the configuration and the database, and say what is wrong.
    Check,
    /// Print the OpenAPI document of this build.
    Openapi,
    /// Accounting tools.
    Accounting {
        #[command(subcommand)]
        command: AccountingCommand,
    },
    /// Invoicing tools.
    Invoicing {
        #[command(subcommand)]
        command: InvoicingCommand,
    },
    /// Members tools.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// Import records from a CSV or ODS file: every row is checked first, and
    /// a single bad row imports nothing (exit status 2, every bad row listed).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import people into an organisation's directory.
    People {
        /// The organisation, by URL name or id.
        #[arg(long)]
        org: String,
        /// A .csv (`,` `;` or tab; UTF-8 or Windows-1252) or .ods file whose first row names the columns.
        file: PathBuf,
        /// Read a field from a column: `--map "Courriel=email"` (repeatable; `--map "Ville="` is not a field).
        /// Fields: given_name, family_name, email, phone. Unmapped fields are matched by column name.
        #[arg(long = "map", value_name = "COLUMN=FIELD")]
        map: Vec<String>,
        /// Leave out rows whose email is already in the file or the organisation, instead of failing.
        #[arg(long)]
        skip_duplicates: bool,
        /// Check every row and report, import nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an instance administrator (works while the server runs).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "")]
        name: String,
    },
}

#[derive(Subcommand)]
enum AccountingCommand {
    /// Check the books of every organisation: entries balanced, validated entries
    /// unchanged, numbering continuous, closed years untouched, audit chain intact.
    /// Exit status 2 when something is wrong.
    Check,
}

#[derive(Subcommand)]
enum InvoicingCommand {
    /// Run a billing run for one organisation (due subscription periods and
    /// pending items become validated invoices, one per customer) and follow
    /// its progress. The run is a background job: a running server may take
    /// part in it; interrupted, it resumes from the invoicing pages or API.
    Bill {
        /// Organisation slug.
        #[arg(long)]
        org: String,
        /// Issue date of the invoices (`YYYY-MM-DD`); today when left out.
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Subcommand)]
enum MembersCommand {
    /// Send the renewal notices and reminders due for one organisation (with
    /// dues as invoices, record the renewals and their invoices) and follow
    /// the run's progress. The run is a background job: a running server may
    /// take part in it; nothing already sent is sent again.
    Renew {
        /// Organisation slug.
        #[arg(long)]
        org: String,
        /// The day the notices and reminders are due for (`YYYY-MM-DD`); the
        /// organisation's today when left out.
        #[arg(long)]
        on: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and report the first broken entry, if any.
    Verify,
}

/// Password hashing allocates 19 MiB blocks on whichever blocking thread runs
/// it. glibc raises its mmap threshold after the first such block is freed,
/// so later ones came from per-thread arenas and stayed there: a burst of
/// sign-ins left ~19 MiB behind in each of up to 16 arenas (333 MB resident).
/// A fixed threshold keeps large blocks in mmap, returned when freed. Rust's
/// and SQLite's allocations now go to jemalloc (`shrooms::alloc`), which
/// returns freed memory after a short delay; this still holds for what other
/// C code allocates through the C library.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// jemalloc for every allocation of the binary (see `shrooms::alloc`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` from this symbol (its C code
/// declares it weak for the program to define). A background thread returns
/// freed pages to the system about a second after they are freed: without
/// it, jemalloc purges only when later allocations run, so a server that
/// fell idle after a burst kept the burst's pages (docs/PERFORMANCE.md).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> anyhow::Result<()> {
    shrooms::alloc::sqlite_on_jemalloc();
    return_large_blocks_to_the_system();
    let cli = Cli::parse();
    let cfg = Config::load()?;
    init_logging(&cfg.log, &cfg.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(cli, cfg))
}

fn init_logging(filter: &str, format: &str) {
    use tracing_subscriber::prelude::*;
    let targets: tracing_subscriber::filter::Targets = match filter.parse() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("log: `{filter}` is not a valid filter ({e}); using `info`");
            "info".parse().expect("valid default filter")
        }
    };
    let registry = tracing_subscriber::registry().with(targets);
    if format == "json" {
        registry.with(tracing_subscriber::fmt::layer().json().with_current_span(true).with_span_list(false)).init();
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_target(false)).init();
    }
}

async fn run(cli: Cli, cfg: Config) -> anyhow::Result<()> {
    let modules = modules()?;
    match cli.command {
        Command::Serve => {
            let started = std::time::Instant::now();
            let listen = cfg.listen.clone();
            let backend = if cfg.is_postgres() { "postgres" } else { "sqlite" };
            let state = shrooms_core::boot(cfg, modules).await?;
            let listener =
                tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            let scheme = if state.cfg.tls.is_some() { "https" } else { "http" };
            tracing::info!(
                database = backend,
                ready_ms = started.elapsed().as_millis() as u64,
                "Shrooms is ready on {scheme}://{addr}/"
            );
            if !state.setup_done().await {
                tracing::info!(
                    "first run: open {scheme}://{addr}/setup to name the instance and create the first administrator"
                );
            }
            shrooms_core::web::serve(state, listener).await
        }
        Command::Migrate => {
            let db = Db::connect(&cfg).await?;
            let applied = shrooms_core::migrate(&cfg, &db, &modules).await?;
            println!("{} migration(s) applied", applied.len());
            for m in applied {
                println!("  {m}");
            }
            Ok(())
        }
        Command::Admin { command: AdminCommand::Create { email, password, name } } => {
            let state = shrooms_core::boot(cfg, modules).await?;
            let mut tx = state.db.begin().await?;
            let who = audit::Who::system("cli");
            let account = identity::create_account(
                &mut tx,
                &who,
                &state.cfg,
                identity::NewAccount {
                    email,
                    display_name: name,
                    password: Some(password),
                    instance_admin: true,
                    email_verified: true,
                    lang: None,
                },
            )
            .await
            .map_err(describe)?;
            tx.commit().await.map_err(describe)?;
            // An administrator exists: the browser setup page is closed (the
            // administrator creates organisations in /admin).
            shrooms_core::instance::close_setup(&state.db).await.map_err(describe)?;
            println!("administrator {} created ({})", account.email, account.id);
            Ok(())
        }
        Command::Demo { scale, seed } => {
            let state = shrooms_core::boot(cfg, modules).await?;
            let report = shrooms_core::demo::load(&state, scale, seed, |done, total| {
                eprint!("\rpeople: {done}/{total} ({}%)", if total == 0 { 100 } else { done * 100 / total });
            })
            .await
            .map_err(describe)?;
            eprintln!();
            println!("{report}");
            Ok(())
        }
        Command::Backup { output } => {
            let db = Db::connect(&cfg).await?;
            let path = shrooms_core::backup::backup_all(&cfg, &db, output).await?;
            println!("backup written to {}", path.display());
            Ok(())
        }
        Command::Restore { file } => {
            shrooms_core::backup::restore(&cfg, &file).await?;
            println!("database restored from {}", file.display());
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let db = Db::connect(&cfg).await?;
            match audit::verify(&db).await.map_err(describe)? {
                audit::Verification::Intact { entries, head } => {
                    println!("audit log intact: {entries} entries, head {head}");
                    Ok(())
                }
                audit::Verification::Broken { seq, reason } => {
                    eprintln!("audit log BROKEN at entry {seq}: {reason}");
                    std::process::exit(2);
                }
            }
        }
        Command::Check => {
            if !cfg.is_postgres() && !cfg.sqlite_path().exists() {
                anyhow::bail!(
                    "database: no database at {} (run `shrooms serve` or `shrooms migrate` to create it)",
                    cfg.sqlite_path().display()
                );
            }
            println!(
                "configuration: ok (data folder {}, listen {}, database {})",
                cfg.data.display(),
                cfg.listen,
                if cfg.is_postgres() { "postgres" } else { "embedded sqlite" }
            );
            // Pages compile their templates on first use: check them all now
            // (a theme's overrides included).
            let templates = shrooms_core::web::Templates::new(&modules, cfg.theme.as_deref())?;
            let broken = templates.compile_all();
            if !broken.is_empty() {
                anyhow::bail!("templates: {} do not compile:\n{}", broken.len(), broken.join("\n"));
            }
            println!("templates: ok ({})", templates.names().len());
            let db = Db::connect(&cfg).await.context("database: cannot connect")?;
            let latency = db.ping().await.map_err(describe)?;
            println!("database: ok ({} , round trip {:.1} ms)", db.backend().name(), latency.as_secs_f64() * 1000.0);
            let pending = shrooms_core::db::pending_migrations(&db, &modules.migrations()).await?;
            if pending.is_empty() {
                println!("migrations: up to date");
            } else {
                println!("migrations: {} pending ({}); run `shrooms migrate`", pending.len(), pending.join(", "));
            }
            Ok(())
        }
        Command::Import { command: ImportCommand::People { org, file, map, skip_duplicates, dry_run } } => {
            import_file(cfg, modules, "people", &org, &file, &map, skip_duplicates, dry_run).await
        }
        Command::Invoicing { command: InvoicingCommand::Bill { org, date } } => bill(cfg, modules, &org, date).await,
        Command::Members { command: MembersCommand::Renew { org, on } } => renew(cfg, modules, &org, on).await,
        Command::Accounting { command: AccountingCommand::Check } => {
            let db = Db::connect(&cfg).await?;
            let report = shrooms_accounting::check::run(&db).await?;
            if report.ok() {
                println!(
                    "books intact: {} organisation(s), {} entries, {} lines, {} closed year(s); audit log intact ({} entries)",
                    report.organisations, report.entries, report.lines, report.closed_years, report.audit_entries
                );
                Ok(())
            } else {
                for p in &report.problems {
                    eprintln!("BROKEN: {p}");
                }
                eprintln!("books check failed: {} problem(s)", report.problems.len());
                std::process::exit(2);
            }
        }
        Command::Openapi => {
            let doc = shrooms_core::web::api::openapi_document(&modules);
            println!("{}", doc.to_pretty_json()?);
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
/// `shrooms invoicing bill`: starts a billing run as the operator (audited as
/// `cli`), works on the job queue in this process like a replica would, and
/// prints the run's progress until it ends.
async fn bill(cfg: Config, modules: shrooms_core::Modules, org: &str, date: Option<String>) -> anyhow::Result<()> {
    use shrooms_invoicing::billing;
    let state = shrooms_core::boot(cfg, modules).await?;
    let found = shrooms_core::orgs::find_org(&state.db, org).await.map_err(describe)?;
    let org = found.with_context(|| format!("no organisation {org}"))?;
    let cap = shrooms_core::permissions::CanWrite::operator(org.id, shrooms_invoicing::MODULE);
    let who = audit::Who::system("cli: invoicing bill");
    let run = billing::start_run(&state.db, &who, &cap, billing::NewBillingRun { run_date: date, stop_after: None })
        .await
        .map_err(describe)?;
    eprintln!("billing run {} for {} on {}", run.id, org.slug, run.run_date);
    tokio::spawn(shrooms_core::jobs::run_worker(state.clone()));
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let r = billing::get_run(&state.db, &cap.as_read(), &run.id).await.map_err(describe)?;
        let rate = r.done as f64 / started.elapsed().as_secs_f64().max(0.001);
        eprint!("\r{}: {}/{} customers, {} invoices ({rate:.0} customers/s)", r.status, r.done, r.total, r.invoices);
        match r.status.as_str() {
            "done" => {
                eprintln!();
                println!(
                    "billing run done in {:.1} s: {} invoices, {} customers carried over (below the minimum), {} held back{}",
                    started.elapsed().as_secs_f64(),
                    r.invoices,
                    r.carried_over,
                    r.failed,
                    r.error.map(|e| format!(" ({e})")).unwrap_or_default()
                );
                return Ok(());
            }
            "failed" | "cancelled" | "paused" => {
                eprintln!();
                anyhow::bail!("billing run {}: {}", r.status, r.error.unwrap_or_default());
            }
            _ => {}
        }
    }
}

/// `shrooms members renew`: starts a renewal run as the operator (audited
/// as `cli`), works on the job queue in this process like a replica would,
/// and prints the run's progress until it ends.
async fn renew(cfg: Config, modules: shrooms_core::Modules, org: &str, on: Option<String>) -> anyhow::Result<()> {
    use shrooms_members::renewals;
    let state = shrooms_core::boot(cfg, modules).await?;
    let found = shrooms_core::orgs::find_org(&state.db, org).await.map_err(describe)?;
    let org = found.with_context(|| format!("no organisation {org}"))?;
    let cap = shrooms_core::permissions::CanWrite::operator(org.id, shrooms_members::MODULE);
    let who = audit::Who::system("cli: members renew");
    let on = renewals::run_day(on.as_deref()).map_err(|e| describe(e.into()))?;
    let run = renewals::start(&state, &who, &cap, on, "cli").await.map_err(|e| describe(e.into()))?;
    eprintln!("renewal run {} for {} on {}", run.id, org.slug, run.on);
    tokio::spawn(shrooms_core::jobs::run_worker(state.clone()));
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let r = renewals::get_run(&state.db, &cap.as_read(), &run.id).await.map_err(|e| describe(e.into()))?;
        let rate = r.done as f64 / started.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r{}: {}/{} members, {} notices, {} reminders, {} invoiced ({rate:.0} members/s)",
            r.status, r.done, r.total, r.notices, r.reminders, r.invoiced
        );
        match r.status.as_str() {
            "done" => {
                eprintln!();
                println!(
                    "renewal run done in {:.1} s: {} notices, {} reminders, {} renewals invoiced, {} without e-mail",
                    started.elapsed().as_secs_f64(),
                    r.notices,
                    r.reminders,
                    r.invoiced,
                    r.without_email
                );
                return Ok(());
            }
            "failed" | "cancelled" => {
                eprintln!();
                anyhow::bail!("renewal run {}: {}", r.status, r.error.unwrap_or_default());
            }
            _ => {}
        }
    }
}

async fn import_file(
    cfg: Config,
    modules: shrooms_core::Modules,
    kind: &str,
    org: &str,
    file: &std::path::Path,
    map: &[String],
    skip_duplicates: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    use shrooms_core::import::{self, MappingInput, Outcome};
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let state = shrooms_core::boot(cfg, modules).await?;
    let (db, modules) = (&state.db, &state.modules);
    let started = std::time::Instant::now();
    let mut view = import::operator_stage(db, modules, org, kind, &name, &bytes).await.map_err(describe)?;
    if !map.is_empty() || skip_duplicates {
        let mut input = MappingInput { skip_duplicates: Some(skip_duplicates), ..Default::default() };
        for m in map {
            let (column, field) = m.rsplit_once('=').with_context(|| format!("--map {m}: write it as COLUMN=FIELD"))?;
            input.mapping.insert(field.trim().to_string(), Some(column.to_string()));
        }
        view = import::operator_set_mapping(db, modules, org, &view.id, input).await.map_err(describe)?;
    }
    eprintln!(
        "{name}: read as {}, {} rows, checked in {:.1} s",
        view.file_format,
        view.rows_total,
        started.elapsed().as_secs_f64()
    );
    for f in &view.fields {
        eprintln!("  {:<12} <- {}", f.key, view.mapping.get(&f.key).map(String::as_str).unwrap_or("(not imported)"));
    }
    let report = |errors: &[import::RowError]| {
        for e in errors {
            let column = e.column.as_deref().map(|c| format!("column \"{c}\" ")).unwrap_or_default();
            println!("line {}: {column}({}): {}", e.line, e.field, e.message);
        }
    };
    if view.error_count > 0 {
        report(&view.errors);
        eprintln!("nothing imported: {} problem(s) in the file", view.error_count);
        std::process::exit(2);
    }
    if dry_run {
        println!(
            "dry run: {} rows would be imported ({} duplicates left out); nothing was imported",
            view.rows_total - view.rows_skipped,
            view.rows_skipped
        );
        return Ok(());
    }
    let started = std::time::Instant::now();
    let outcome = import::operator_run(db, modules, org, &view.id, |done, total| {
        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
        eprint!("\rimporting: {done}/{total} rows ({rate:.0} rows/s)");
    })
    .await
    .map_err(describe)?;
    eprintln!();
    match outcome {
        Outcome::Imported { rows, skipped } => {
            println!(
                "imported {rows} rows ({skipped} duplicates left out) in {:.1} s (import {})",
                started.elapsed().as_secs_f64(),
                view.id
            );
            Ok(())
        }
        Outcome::Rejected { errors } => {
            report(&errors);
            eprintln!("nothing imported: {} problem(s) in the file", errors.len());
            std::process::exit(2);
        }
        Outcome::Nothing => anyhow::bail!("the import {} was already run", view.id),
    }
}

fn describe(e: shrooms_core::CoreError) -> anyhow::Error {
    let fields: Vec<String> = e.field_errors().into_iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
    if fields.is_empty() {
        anyhow::anyhow!("{}", e.public_detail())
    } else {
        anyhow::anyhow!("{} {}", e.public_detail(), fields.join("; "))
    }
}
