//! The auth matrix: every protected operation of the document × every kind
//! of caller → the documented status, and not one byte changed in the
//! database or the audit log.

use serde_json::{json, Value};

use super::{published, snapshot, spec, Gallery, Req};
use crate::support::TestContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Nobody,
    Malformed,
    Unknown,
    Expired,
    Revoked,
    Suspended,
    OtherArtist,
    Admin,
    Owner,
}

/// A body each write would accept from its rightful caller, so only the caller decides the outcome.
pub(super) fn valid_body(method: &str, template: &str) -> Option<Value> {
    Some(match (method, template) {
        ("PATCH", "/v1/me") => json!({ "bio": "changed" }),
        ("POST", "/v1/me/artworks") => json!({ "title": "Matrix" }),
        ("PATCH", "/v1/manage/artworks/{id}") => json!({ "title": "Changed" }),
        ("POST", "/v1/manage/artworks/{id}/status") => json!({ "action": "archive" }),
        ("POST", "/v1/manage/artworks/{id}/editions") => {
            json!({ "edition_size": 5, "paper": "Rag", "price_minor": 1, "currency": "EUR" })
        }
        ("POST", "/v1/manage/artworks/{id}/images") => {
            json!({ "file_name": "x.jpg", "alt_text": "A print" })
        }
        ("PATCH", "/v1/manage/editions/{id}") => json!({ "paper": "Other" }),
        ("POST", "/v1/manage/editions/{id}/sales") => json!({ "count": 1 }),
        ("POST", "/v1/manage/sales/{id}/void") => json!({ "reason": "recorded twice" }),
        ("PATCH", "/v1/manage/images/{id}") => json!({ "position": 0 }),
        ("POST", "/v1/admin/artists") => json!({ "name": "New", "email": "new@copper.example" }),
        ("PATCH", "/v1/admin/artists/{id}") => json!({ "name": "Renamed" }),
        ("POST", "/v1/admin/artists/{id}/suspension") => json!({ "reason": "test" }),
        ("POST", "/v1/admin/tokens") => {
            json!({ "scope": "admin", "label": "x", "expires_in_days": 1 })
        }
        ("POST", _) => return None,
        _ => return None,
    })
}

#[tokio::test]
async fn every_protected_operation_refuses_every_wrong_caller_and_changes_nothing() {
    let ctx = TestContext::new().await;
    let gallery = Gallery::new(&ctx);
    let owner = published(&ctx, &gallery, "Owner", "Owned Work").await;
    let (_, other) = ctx.artist_with_token("Other Artist").await;
    let admin = ctx.admin_token().await;
    let (expired_id, expired) =
        ctx.token_for(owner.artist, chrono::Utc::now() + chrono::Duration::milliseconds(300)).await;
    let (revoked_id, revoked) =
        ctx.token_for(owner.artist, chrono::Utc::now() + chrono::Duration::hours(1)).await;
    let (suspended_artist, suspended) = ctx.artist_with_token("Suspended Artist").await;
    let client = ctx.pool.get().await.unwrap();
    client
        .execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", &[&revoked_id])
        .await
        .unwrap();
    client
        .execute(
            "UPDATE artists SET suspended_at = now(), suspension_reason = 'test' WHERE id = $1",
            &[&suspended_artist],
        )
        .await
        .unwrap();
    // An erasure on record, for the route that shows one.
    let (leaving, _) = ctx.artist_with_token("Leaving Artist").await;
    let (erasure, _) =
        shared::db::request_erasure(&client, leaving, "token:test", None).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // Each live token's last use is recorded once a minute: use them now, so the matrix writes nothing.
    for token in [&owner.token, &other] {
        gallery.expect(200, Req::get("/v1/me").token(token)).await;
    }
    gallery.expect(200, Req::get("/v1/admin/artists").token(&admin)).await;
    let sale = sold_print(&gallery, &owner).await;
    let before = snapshot(&client).await;
    let last_entry: i64 =
        client.query_one("SELECT coalesce(max(id), 0) FROM audit_log", &[]).await.unwrap().get(0);

    let token_of = |caller: Caller| -> Option<String> {
        match caller {
            Caller::Nobody => None,
            Caller::Malformed => Some("Bearer cpg_x".into()),
            Caller::Unknown => Some(shared::domain::new_token().0),
            Caller::Expired => Some(expired.clone()),
            Caller::Revoked => Some(revoked.clone()),
            Caller::Suspended => Some(suspended.clone()),
            Caller::OtherArtist => Some(other.clone()),
            Caller::Admin => Some(admin.clone()),
            Caller::Owner => Some(owner.token.clone()),
        }
    };
    let mut checked = 0;
    for (method, template, op) in spec::operations() {
        if !spec::secured(op) {
            continue;
        }
        let path = match template.strip_prefix("/v1/admin/erasures/") {
            Some(_) => template.replace("{id}", &erasure.id.to_string()),
            None => fill_with(&template, &owner, owner.artist, expired_id, &sale),
        };
        let admin_route = template.starts_with("/v1/admin");
        let own_route = template.starts_with("/v1/me");
        let write = method != "GET";
        for caller in [
            Caller::Nobody,
            Caller::Malformed,
            Caller::Unknown,
            Caller::Expired,
            Caller::Revoked,
            Caller::Suspended,
            Caller::OtherArtist,
            Caller::Admin,
            Caller::Owner,
        ] {
            let expected = match caller {
                Caller::Nobody
                | Caller::Malformed
                | Caller::Unknown
                | Caller::Expired
                | Caller::Revoked
                | Caller::Suspended => 401,
                Caller::OtherArtist | Caller::Owner if admin_route => 403,
                Caller::OtherArtist if own_route => continue,
                Caller::OtherArtist => 404,
                Caller::Admin if own_route => 403,
                // Rightful callers: reads succeed; writes are not run here (the flows do them).
                Caller::Admin | Caller::Owner if write => continue,
                Caller::Admin | Caller::Owner => 200,
            };
            let mut req = Req::new(&method, &path).if_match("\"not-checked-before-auth\"");
            if let Some(t) = token_of(caller) {
                req = req.header(api::TOKEN_HEADER, &t);
            }
            req = match valid_body(&method, &template) {
                Some(body) => req.json(&body),
                None if method == "POST" => req.empty_body(),
                None => req,
            };
            let reply = gallery.send(req).await;
            assert_eq!(reply.status, expected, "{caller:?} {method} {template}: {reply:?}");
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked}");
    // The rightful admin's reads of artists' emails are audited (that is the
    // point); nothing else may have changed.
    let (mut after, mut before) = (snapshot(&client).await, before);
    after.remove("audit_log");
    before.remove("audit_log");
    assert_eq!(after, before, "no refused request changed the database");
    let entries = client
        .query("SELECT actor, action FROM audit_log WHERE id > $1", &[&last_entry])
        .await
        .unwrap();
    let admin_actor = client
        .query_one("SELECT 'token:' || id FROM api_tokens WHERE scope = 'admin' LIMIT 1", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    for e in &entries {
        let (actor, action): (String, String) = (e.get(0), e.get(1));
        assert_eq!(
            (actor.as_str(), action.as_str()),
            (admin_actor.as_str(), "artist.personal_data_read"),
            "no refused request wrote to the audit log"
        );
    }
    assert!(!entries.is_empty(), "the admin's reads of emails are audited");
}

/// A print of the owner's work sold from a second edition (the first keeps
/// all its prints): the sale the `/v1/manage/sales/{id}` routes act on.
pub(super) async fn sold_print(gallery: &Gallery, owner: &super::Published) -> String {
    let spare = gallery
        .expect(
            201,
            Req::new("POST", &format!("/v1/manage/artworks/{}/editions", owner.artwork))
                .token(&owner.token)
                .json(&json!({ "edition_size": 10, "paper": "Kozo", "price_minor": 90000, "currency": "EUR" })),
        )
        .await
        .id();
    let sold = gallery
        .expect(
            200,
            Req::new("POST", &format!("/v1/manage/editions/{spare}/sales"))
                .token(&owner.token)
                .json(&json!({})),
        )
        .await;
    sold.body["sales"][0]["id"].as_str().unwrap().to_owned()
}

pub(super) fn fill_with(
    template: &str,
    owner: &super::Published,
    artist: uuid::Uuid,
    token: uuid::Uuid,
    sale: &str,
) -> String {
    let id = if template.starts_with("/v1/manage/sales/") {
        sale.to_owned()
    } else if template.starts_with("/v1/manage/artworks/") {
        owner.artwork.clone()
    } else if template.starts_with("/v1/manage/editions/") {
        owner.edition.clone()
    } else if template.starts_with("/v1/manage/images/") {
        owner.image.clone()
    } else if template.starts_with("/v1/admin/artists/") {
        artist.to_string()
    } else {
        token.to_string()
    };
    template.replace("{id}", &id)
}
