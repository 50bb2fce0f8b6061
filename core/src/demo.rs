//! `shrooms demo`: realistic, reproducible demo data. The same seed gives the
//! same data. People are inserted in bulk (one audit entry per batch load, not
//! per row), so `--scale 100000` loads in seconds.

use crate::audit::{self, Change, Who};
use crate::error::CoreResult;
use crate::identity::{self, NewAccount};
use crate::ids::OrgId;
use crate::orgs::{self, NewOrg};
use crate::people;
use crate::permissions::{CanWrite, InstanceAdmin};
use crate::web::AppState;

/// xorshift64*: small, fast, reproducible; not for secrets.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const GIVEN: &[&str] = &[
    "Camille", "Léa", "Hugo", "Lucas", "Emma", "Chloé", "Nathan", "Inès", "Louis", "Manon", "Aïcha", "Youssef",
    "Fatou", "Mamadou", "Awa", "Jean", "Marie", "Pierre", "Sophie", "Thomas", "Julie", "Nicolas", "Sarah", "Antoine",
    "Zoé", "Kofi", "Amina", "Paul", "Clara", "Mehdi",
];
const FAMILY: &[&str] = &[
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
    "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Diallo", "Traoré",
    "Ndiaye", "Mensah", "Koné", "Nguyen", "Benali", "Rousseau", "Blanc", "Guerin",
];
const ORGS: &[&str] = &[
    "AESI",
    "Atelier Vélo",
    "Repair Café",
    "Coopérative d'Hébergement",
    "Association des Parents",
    "Jardin Partagé",
    "Ressourcerie",
];
const DOMAINS: &[&str] = &["example.org", "example.net", "example.com"];

pub async fn load(
    st: &AppState,
    scale: usize,
    seed: u64,
    mut progress: impl FnMut(usize, usize),
) -> CoreResult<String> {
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let org_count = scale.div_ceil(2000).max(1);
    let who = Who::system("demo");
    let admin_email = "demo@example.org";
    let admin = match identity::find_account_by_email(&st.db, admin_email).await? {
        Some(a) => a,
        None => {
            let mut tx = st.db.begin().await?;
            let a = identity::create_account(
                &mut tx,
                &who,
                &st.cfg,
                NewAccount {
                    email: admin_email.into(),
                    display_name: "Demo Admin".into(),
                    password: Some("demo-password".into()),
                    instance_admin: true,
                    email_verified: true,
                    lang: None,
                },
            )
            .await?;
            tx.commit().await?;
            a
        }
    };
    let mut done = 0usize;
    let mut org_ids: Vec<OrgId> = Vec::new();
    for i in 0..org_count {
        let base = ORGS[i % ORGS.len()];
        let name = if org_count > ORGS.len() { format!("{base} {}", i / ORGS.len() + 1) } else { base.to_string() };
        let mut tx = st.db.begin().await?;
        let org = orgs::create_org(
            &mut tx,
            &who,
            &InstanceAdmin::grant(None),
            &st.modules,
            NewOrg { name, slug: None, timezone: None, currency: None },
            Some(admin.id),
        )
        .await?;
        tx.commit().await?;
        org_ids.push(org.id);
        let n = (scale - done).min(scale.div_ceil(org_count));
        let mut left = n;
        while left > 0 {
            let batch = left.min(400);
            let mut tx = st.db.begin().await?;
            let mut rows = Vec::with_capacity(batch);
            for _ in 0..batch {
                let g = rng.pick(GIVEN);
                let f = rng.pick(FAMILY);
                let email = format!("{}.{}{}@{}", ascii(g), ascii(f), rng.next() % 1000, rng.pick(DOMAINS));
                let phone = format!(
                    "+33 6 {:02} {:02} {:02} {:02}",
                    rng.next() % 100,
                    rng.next() % 100,
                    rng.next() % 100,
                    rng.next() % 100
                );
                rows.push((g.to_string(), f.to_string(), Some(email), Some(phone)));
            }
            people::insert_bulk(&mut tx, &CanWrite::grant(org.id, admin.id, "core"), &rows).await?;
            audit::record(
                &mut tx,
                &who,
                Change {
                    org: Some(org.id),
                    action: "person.import",
                    entity_type: "person",
                    entity_id: "*".into(),
                    before: None,
                    after: Some(serde_json::json!({"count": batch, "source": "demo"})),
                },
            )
            .await?;
            tx.commit().await?;
            left -= batch;
            done += batch;
            progress(done, scale);
        }
    }
    // The modules' own demo data, for the modules that are on.
    let mut lines = Vec::new();
    let enabled = crate::instance::enabled_modules(&st.db, &st.modules, None).await?;
    for m in st.modules.all() {
        if let (Some(f), true) = (m.demo(), enabled.iter().any(|e| e == m.id())) {
            let ctx = crate::module::DemoCtx { orgs: org_ids.clone(), scale, seed, admin: admin.id };
            lines.push(f(st.clone(), ctx).await?);
        }
    }
    // Fresh statistics (and, on PostgreSQL, a visibility map for index-only
    // scans), as the database would have after autovacuum caught up.
    let maintenance = match st.db.backend() {
        crate::db::Backend::Postgres => "VACUUM ANALYZE",
        crate::db::Backend::Sqlite => "ANALYZE",
    };
    sqlx::query(maintenance).execute(st.db.pool()).await?;
    let mut report = format!(
        "demo data loaded: {} organisation(s), {done} people; sign in as {admin_email} / demo-password",
        org_ids.len()
    );
    for l in lines {
        report.push('\n');
        report.push_str(&l);
    }
    Ok(report)
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'é' | 'è' => 'e',
            'ï' => 'i',
            'ç' => 'c',
            'ë' => 'e',
            c => c,
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase()
}
