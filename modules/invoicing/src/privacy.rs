//! Invoicing's part of a person's personal data ([`shrooms_core::privacy`]):
//! the customer records linked to the person, their documents and payments.
//!
//! At erasure the **customer record** is pseudonymised (name, e-mail,
//! addresses; identifiers of an individual) and archived, and payers'
//! names on payments become the pseudonym. **Issued invoices and credit
//! notes are kept unchanged**, their frozen buyer copy and PDF included:
//! they are legal documents the seller must keep for 10 years (Code de
//! commerce L123-22, CGI art. 289). A customer with an invoice not fully
//! paid cannot be erased yet.

use crate::MODULE;
use shrooms_core::db::Tx;
use shrooms_core::privacy::{rows, Col, Erasure, ErasureNote, Outcome, PersonalData, PrivacyFuture, Section, Subject};
use shrooms_core::{CoreResult, Db};
use sqlx::Row;

pub struct InvoicingPersonalData;

const OPEN: &str = "d.kind = 'invoice' AND d.status IN ('validated', 'sent', 'partially_paid') \
                    AND d.gross_cents - d.paid_cents - d.credited_cents > 0";

impl PersonalData for InvoicingPersonalData {
    fn export<'a>(&'a self, db: &'a Db, s: &'a Subject) -> PrivacyFuture<'a, Vec<Section>> {
        Box::pin(async move {
            use Col::*;
            let b = [s.org.to_string(), s.person_id.clone()];
            let b = [b[0].as_str(), b[1].as_str()];
            let customers = rows(
                db,
                "SELECT kind, name, email, address, postcode, city, country, delivery_address, delivery_postcode, delivery_city, \
                 delivery_country, siren, siret, vat_number, aux_account, created_at FROM inv_customers \
                 WHERE org_id = $1 AND person_id = $2 ORDER BY created_at",
                &b,
                &[("kind", Text), ("name", Text), ("email", Text), ("address", Text), ("postcode", Text), ("city", Text), ("country", Text),
                  ("delivery_address", Text), ("delivery_postcode", Text), ("delivery_city", Text), ("delivery_country", Text),
                  ("siren", Text), ("siret", Text), ("vat_number", Text), ("aux_account", Text), ("created_at", Time)],
            )
            .await?;
            let documents = rows(
                db,
                "SELECT d.kind, d.number, d.status, d.issue_date, d.due_date, d.currency, d.net_cents, d.vat_cents, d.gross_cents, \
                 d.paid_cents, d.credited_cents FROM inv_documents d JOIN inv_customers c ON c.id = d.customer_id \
                 WHERE d.org_id = $1 AND c.person_id = $2 ORDER BY d.created_at",
                &b,
                &[("kind", Text), ("number", OptText), ("status", Text), ("issue_date", OptText), ("due_date", OptText),
                  ("currency", Text), ("net_cents", Int), ("vat_cents", Int), ("gross_cents", Int), ("paid_cents", Int), ("credited_cents", Int)],
            )
            .await?;
            let payments = rows(
                db,
                "SELECT p.method, p.amount_cents, p.received_date, p.payer, p.reference, p.status FROM inv_payments p \
                 JOIN inv_customers c ON c.id = p.customer_id WHERE p.org_id = $1 AND c.person_id = $2 ORDER BY p.received_date",
                &b,
                &[("method", Text), ("amount_cents", Int), ("received_date", Text), ("payer", Text), ("reference", Text), ("status", Text)],
            )
            .await?;
            Ok(vec![
                Section::new(MODULE, "customers", customers),
                Section::new(MODULE, "documents", documents),
                Section::new(MODULE, "payments", payments),
            ])
        })
    }

    fn obligations<'a>(&'a self, tx: &'a mut Tx, s: &'a Subject) -> PrivacyFuture<'a, Vec<String>> {
        Box::pin(async move {
            let open = sqlx::query(&format!(
                "SELECT d.number, d.gross_cents - d.paid_cents - d.credited_cents FROM inv_documents d \
                 JOIN inv_customers c ON c.id = d.customer_id WHERE d.org_id = $1 AND c.person_id = $2 AND {OPEN} ORDER BY d.number"
            ))
            .bind(s.org.to_string())
            .bind(&s.person_id)
            .fetch_all(tx.conn())
            .await?;
            let mut out = Vec::new();
            for r in &open {
                let (number, left): (Option<String>, i64) = (r.try_get(0)?, r.try_get(1)?);
                out.push(format!(
                    "Invoice {} is not fully paid ({}.{:02} left).",
                    number.unwrap_or_default(),
                    left / 100,
                    left % 100
                ));
            }
            Ok(out)
        })
    }

    fn erase<'a>(&'a self, tx: &'a mut Tx, e: &'a Erasure) -> PrivacyFuture<'a, Vec<ErasureNote>> {
        Box::pin(async move { erase(tx, e).await })
    }
}

async fn erase(tx: &mut Tx, e: &Erasure) -> CoreResult<Vec<ErasureNote>> {
    let org = e.subject.org.to_string();
    let person = e.subject.person_id.as_str();
    let payments = sqlx::query(
        "UPDATE inv_payments SET payer = $1 WHERE org_id = $2 AND payer <> '' \
         AND customer_id IN (SELECT id FROM inv_customers WHERE org_id = $2 AND person_id = $3)",
    )
    .bind(&e.pseudonym)
    .bind(&org)
    .bind(person)
    .execute(tx.conn())
    .await?
    .rows_affected() as i64;
    let customers = sqlx::query(
        "UPDATE inv_customers SET name = $1, email = '', address = '', postcode = '', city = '', delivery_address = '', \
         delivery_postcode = '', delivery_city = '', delivery_country = '', \
         siren = CASE WHEN kind = 'individual' THEN '' ELSE siren END, siret = CASE WHEN kind = 'individual' THEN '' ELSE siret END, \
         vat_number = CASE WHEN kind = 'individual' THEN '' ELSE vat_number END, archived = 1, updated_at = $2 \
         WHERE org_id = $3 AND person_id = $4",
    )
    .bind(&e.pseudonym)
    .bind(shrooms_core::ids::Timestamp::now().0)
    .bind(&org)
    .bind(person)
    .execute(tx.conn())
    .await?
    .rows_affected() as i64;
    let issued: i64 = sqlx::query(
        "SELECT COUNT(*) FROM inv_documents d JOIN inv_customers c ON c.id = d.customer_id \
         WHERE d.org_id = $1 AND c.person_id = $2 AND d.number IS NOT NULL",
    )
    .bind(&org)
    .bind(person)
    .fetch_one(tx.conn())
    .await?
    .try_get(0)?;
    Ok(vec![
        ErasureNote::new(
            MODULE,
            "customers",
            Outcome::Pseudonymised,
            customers,
            "Customer record: name replaced by the pseudonym, e-mail and addresses emptied, archived.",
        ),
        ErasureNote::new(MODULE, "payments", Outcome::Pseudonymised, payments, "Payer's name replaced by the pseudonym; amounts and dates kept."),
        ErasureNote::new(
            MODULE,
            "documents",
            Outcome::Kept,
            issued,
            "Issued invoices and credit notes are legal documents kept unchanged for 10 years (Code de commerce L123-22, CGI art. 289), with the buyer as invoiced.",
        ),
    ])
}
