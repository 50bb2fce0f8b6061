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
enum AuditCommand {
    /// Recompute the hash chain and report the first broken entry, if any.
    Verify,
}

fn main() -> anyhow::Result<()> {
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
        Command::Openapi => {
            let doc = shrooms_core::web::api::openapi_document(&modules);
            println!("{}", doc.to_pretty_json()?);
            Ok(())
        }
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
