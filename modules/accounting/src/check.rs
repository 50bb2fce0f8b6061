//! `shrooms accounting check`: proves the books are what they were. For
//! every organisation: every entry balances, validated entries still match
//! their seal, numbers run 1, 2, 3… without gap in each journal and fiscal
//! year, closed years still match the seal written when they were closed;
//! and the audit log's hash chain is intact.

use crate::domain::{self, Amount, Line};
use crate::repo;
use serde::Serialize;
use shrooms_core::audit;
use shrooms_core::db::Db;
use shrooms_core::ids::OrgId;
use sqlx::Row;
use std::collections::BTreeMap;

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub organisations: usize,
    pub entries: i64,
    pub lines: i64,
    pub closed_years: usize,
    pub audit_entries: i64,
    /// Each problem found, in words; empty when the books are intact.
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

pub async fn run(db: &Db) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport::default();
    let orgs = sqlx::query("SELECT b.org_id, o.slug FROM acct_books b JOIN orgs o ON o.id = b.org_id ORDER BY o.slug")
        .fetch_all(db.pool())
        .await?;
    let mut conn = db.pool().acquire().await?;
    for o in orgs {
        let org: OrgId = o.try_get::<String, _>(0)?.parse()?;
        let slug: String = o.try_get(1)?;
        report.organisations += 1;
        let p = |m: String| format!("{slug}: {m}");
        // Balanced entries, in one aggregate.
        let unbalanced = sqlx::query(
            "SELECT e.id, e.journal, e.number, CAST(SUM(l.debit) AS BIGINT), CAST(SUM(l.credit) AS BIGINT), COUNT(*) FROM acct_entries e JOIN acct_lines l ON l.entry_id = e.id \
             WHERE e.org_id = $1 GROUP BY e.id, e.journal, e.number",
        )
        .bind(org.to_string())
        .fetch_all(&mut *conn)
        .await?;
        for r in &unbalanced {
            report.entries += 1;
            report.lines += r.try_get::<i64, _>(5)?;
            let (d, c) = (repo::sum_i64(r, 3)?, repo::sum_i64(r, 4)?);
            if d != c {
                let journal: String = r.try_get(1)?;
                let n: Option<i64> = r.try_get(2)?;
                report.problems.push(p(format!(
                    "entry {} does not balance (debits {} ≠ credits {})",
                    n.map(|n| domain::entry_ref(&journal, n))
                        .unwrap_or_else(|| r.try_get::<String, _>(0).unwrap_or_default()),
                    Amount(d),
                    Amount(c)
                )));
            }
        }
        // Seals of validated entries, a thousand at a time.
        let mut last_id = String::new();
        // Seals recomputed from the rows, per fiscal year: a closed year's
        // seal is checked against these, not against the stored ones.
        let mut recomputed: BTreeMap<String, Vec<(String, i64, String)>> = BTreeMap::new();
        loop {
            let entries = repo::load_entries(
                &mut conn,
                org,
                "AND e.status = 'validated' AND e.id > $2",
                std::slice::from_ref(&last_id),
                "ORDER BY e.id LIMIT 1000",
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(last) = entries.last() else { break };
            last_id = last.id.clone();
            for e in &entries {
                let lines: Vec<Line> = e.lines.iter().map(|s| s.line.clone()).collect();
                let h = domain::entry_hash(
                    &org.to_string(),
                    &e.year_id,
                    &e.journal,
                    e.number.unwrap_or(0),
                    &e.date,
                    &e.label,
                    &e.piece_ref,
                    e.piece_date.as_deref(),
                    &e.kind,
                    &lines,
                );
                let changed = e.hash.as_deref() != Some(h.as_str()) || e.number.is_none();
                recomputed.entry(e.year_id.clone()).or_default().push((e.journal.clone(), e.number.unwrap_or(0), h));
                if changed {
                    report.problems.push(p(format!(
                        "validated entry {} was changed after validation (its seal does not match)",
                        domain::entry_ref(&e.journal, e.number.unwrap_or(0))
                    )));
                }
            }
        }
        // Continuous numbering per journal and year.
        let rows = sqlx::query(
            "SELECT year_id, journal, number FROM acct_entries WHERE org_id = $1 AND status = 'validated' ORDER BY year_id, journal, number",
        )
        .bind(org.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut seqs: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for r in rows {
            seqs.entry((r.try_get(0)?, r.try_get(1)?)).or_default().push(r.try_get::<Option<i64>, _>(2)?.unwrap_or(0));
        }
        let years = repo::years(&mut conn, org).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let year_name = |id: &str| {
            years.iter().find(|y| y.id == id).map(|y| format!("{} – {}", y.start, y.end)).unwrap_or_default()
        };
        for ((year, journal), nums) in &seqs {
            for (i, n) in nums.iter().enumerate() {
                if *n != i as i64 + 1 {
                    report.problems.push(p(format!(
                        "journal {journal}, year {}: numbering breaks at {} (expected {})",
                        year_name(year),
                        domain::entry_ref(journal, *n),
                        i + 1
                    )));
                    break;
                }
            }
        }
        let counters = sqlx::query("SELECT year_id, journal, last_number FROM acct_sequences WHERE org_id = $1")
            .bind(org.to_string())
            .fetch_all(&mut *conn)
            .await?;
        for r in counters {
            let key: (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let last: i64 = r.try_get(2)?;
            let used = seqs.get(&key).map(|v| v.len() as i64).unwrap_or(0);
            if last != used {
                report.problems.push(p(format!(
                    "journal {}, year {}: {last} numbers were given but {used} validated entries hold them",
                    key.1,
                    year_name(&key.0)
                )));
            }
        }
        // Closed years untouched.
        for y in years.iter().filter(|y| y.is_closed()) {
            report.closed_years += 1;
            let seal = crate::service::seal_of(recomputed.remove(&y.id).unwrap_or_default());
            if y.closed_hash.as_deref() != Some(seal.as_str()) {
                report.problems.push(p(format!("the closed year {} – {} was changed after closing", y.start, y.end)));
            }
            let drafts: i64 = sqlx::query(
                "SELECT COUNT(*) FROM acct_entries WHERE org_id = $1 AND year_id = $2 AND status <> 'validated'",
            )
            .bind(org.to_string())
            .bind(&y.id)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
            if drafts > 0 {
                report
                    .problems
                    .push(p(format!("the closed year {} – {} holds {drafts} unvalidated entries", y.start, y.end)));
            }
        }
    }
    match audit::verify(db).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        audit::Verification::Intact { entries, .. } => report.audit_entries = entries,
        audit::Verification::Broken { seq, reason } => {
            report.problems.push(format!("audit log: broken at entry {seq}: {reason}"))
        }
    }
    Ok(report)
}
