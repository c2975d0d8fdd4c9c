//! The authentication tables on every SQL backend: SQLite always,
//! PostgreSQL / MySQL when `KILLKRILL_TEST_POSTGRES_URL` /
//! `KILLKRILL_TEST_MYSQL_URL` are set (skipped with the reason printed
//! otherwise; each run in a fresh schema or database).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use killkrill_core::event::Tenant;
use killkrill_core::storage::ErrorKind;
use killkrill_store::auth::{
    AuditEntry, NewApiKey, NewRefreshToken, NewUser, RefreshUse, Role, Scope,
};
use support::*;

async fn sql_backends() -> Vec<Backend> {
    let opts = small_blocks(100);
    let mut v = vec![sqlite(opts.clone()).await];
    match postgres(opts.clone()).await {
        Some(b) => v.push(b),
        None => eprintln!("skipping PostgreSQL: KILLKRILL_TEST_POSTGRES_URL is not set"),
    }
    match mysql(opts).await {
        Some(b) => v.push(b),
        None => eprintln!("skipping MySQL: KILLKRILL_TEST_MYSQL_URL is not set"),
    }
    v
}

fn user(email: &str, tenant: &Tenant, role: Role) -> NewUser {
    NewUser {
        email: email.into(),
        tenant: tenant.clone(),
        role,
        password_hash: format!("$argon2id$fake${email}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_tenants_and_lockout() {
    for b in sql_backends().await {
        let a = b.sql.clone().unwrap().auth();
        let t1 = Tenant::new("acme").unwrap();
        let t2 = Tenant::new("globex").unwrap();
        assert!(a.ensure_tenant(&t1, 1).await.unwrap(), "{}", b.name);
        assert!(!a.ensure_tenant(&t1, 2).await.unwrap(), "{}", b.name);
        assert!(a.ensure_tenant(&t2, 3).await.unwrap());
        let ts = a.tenants().await.unwrap();
        assert_eq!(ts, vec![(t1.clone(), 1), (t2.clone(), 3)], "{}", b.name);

        assert_eq!(a.user_count().await.unwrap(), 0);
        let id = a
            .create_user(&user("ann@acme.test", &t1, Role::Admin), 10)
            .await
            .unwrap();
        let e = a
            .create_user(&user("ann@acme.test", &t2, Role::Viewer), 11)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{}: {e}", b.name);
        let id2 = a
            .create_user(&user("bob@globex.test", &t2, Role::Viewer), 12)
            .await
            .unwrap();
        assert_ne!(id, id2);
        assert_eq!(a.user_count().await.unwrap(), 2);

        let u = a.user_by_email("ann@acme.test").await.unwrap().unwrap();
        assert_eq!(
            (u.id, u.tenant.as_str(), u.role, u.created_at),
            (id, "acme", Role::Admin, 10)
        );
        assert!(a.user_by_email("ANN@acme.test").await.unwrap().is_none());
        assert_eq!(a.users(Some(&t2)).await.unwrap().len(), 1);
        assert_eq!(a.users(None).await.unwrap().len(), 2);

        assert!(a.set_role(id2, Role::Maintainer, 20).await.unwrap());
        assert_eq!(a.user(id2).await.unwrap().unwrap().role, Role::Maintainer);
        assert!(!a.set_role(999_999, Role::Admin, 20).await.unwrap());

        // Lockout: the third failure sets the lock; success clears it.
        assert_eq!(a.login_failed(id, 3, 500).await.unwrap(), 1);
        assert_eq!(a.login_failed(id, 3, 500).await.unwrap(), 2);
        assert_eq!(a.user(id).await.unwrap().unwrap().locked_until, 0);
        assert_eq!(a.login_failed(id, 3, 500).await.unwrap(), 3);
        let u = a.user(id).await.unwrap().unwrap();
        assert_eq!((u.failed_logins, u.locked_until), (3, 500), "{}", b.name);
        a.login_succeeded(id).await.unwrap();
        let u = a.user(id).await.unwrap().unwrap();
        assert_eq!((u.failed_logins, u.locked_until), (0, 0));

        // TOTP: pending, on, steps accepted once, recovery codes once, reset.
        assert_eq!(a.totp_state(id).await.unwrap().secret, None);
        assert!(
            a.set_totp(id, Some("JBSWY3DPEHPK3PXP"), false)
                .await
                .unwrap()
        );
        assert!(!a.totp_state(id).await.unwrap().enabled);
        assert!(a.enable_totp(id, 100).await.unwrap());
        let st = a.totp_state(id).await.unwrap();
        assert_eq!(
            (st.secret.as_deref(), st.enabled, st.last_step),
            (Some("JBSWY3DPEHPK3PXP"), true, 100),
            "{}",
            b.name
        );
        assert!(!a.advance_totp_step(id, 100).await.unwrap(), "replay");
        assert!(!a.advance_totp_step(id, 99).await.unwrap());
        assert!(a.advance_totp_step(id, 101).await.unwrap());
        a.replace_recovery_codes(id, &[[1; 32], [2; 32]])
            .await
            .unwrap();
        assert!(a.use_recovery_code(id, &[1; 32]).await.unwrap());
        assert!(!a.use_recovery_code(id, &[1; 32]).await.unwrap());
        assert!(!a.use_recovery_code(id2, &[2; 32]).await.unwrap());
        assert!(a.set_totp(id, None, false).await.unwrap());
        assert!(!a.use_recovery_code(id, &[2; 32]).await.unwrap());
        assert_eq!(a.totp_state(id).await.unwrap(), Default::default());

        // A password change bumps the session generation and clears the
        // lockout in the same statement; a role change does not bump it.
        assert_eq!(a.user(id).await.unwrap().unwrap().session_gen, 0);
        a.login_failed(id, 1, 900).await.unwrap();
        assert!(a.set_password(id, "$argon2id$new", 30).await.unwrap());
        let u = a.user(id).await.unwrap().unwrap();
        assert_eq!(
            (
                u.password_hash.as_str(),
                u.session_gen,
                u.failed_logins,
                u.locked_until
            ),
            ("$argon2id$new", 1, 0, 0),
            "{}",
            b.name
        );
        assert!(!a.set_password(999_999, "$argon2id$x", 30).await.unwrap());
        assert!(a.set_role(id, Role::Viewer, 31).await.unwrap());
        assert_eq!(a.user(id).await.unwrap().unwrap().session_gen, 1);
        assert_eq!(a.user(id2).await.unwrap().unwrap().session_gen, 0);
        assert!(a.delete_user(id2).await.unwrap());
        assert!(!a.delete_user(id2).await.unwrap());
        assert!(a.user(id2).await.unwrap().is_none());
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    for b in sql_backends().await {
        let a = b.sql.clone().unwrap().auth();
        let t = Tenant::default();
        let uid = a
            .create_user(&user("u@x.test", &t, Role::Viewer), 1)
            .await
            .unwrap();
        let fam = [7u8; 16];
        let tok = |n: u8, exp: i64| NewRefreshToken {
            hash: [n; 32],
            user_id: uid,
            family: fam,
            expires_at: exp,
            session_gen: 0,
        };
        a.insert_refresh(&tok(1, 1000), 10).await.unwrap();
        assert_eq!(a.live_refresh_count(uid, 10).await.unwrap(), 1);
        assert_eq!(
            a.use_refresh(&[1; 32], 20).await.unwrap(),
            RefreshUse::Rotated {
                user_id: uid,
                family: fam,
                session_gen: 0
            },
            "{}",
            b.name
        );
        a.insert_refresh(&tok(2, 1000), 20).await.unwrap();
        // The successor works once...
        assert!(matches!(
            a.use_refresh(&[2; 32], 30).await.unwrap(),
            RefreshUse::Rotated { .. }
        ));
        a.insert_refresh(&tok(3, 1000), 30).await.unwrap();
        assert_eq!(a.live_refresh_count(uid, 30).await.unwrap(), 1);
        // ...and the old one presented again revokes the whole family,
        // including the live successor.
        assert_eq!(
            a.use_refresh(&[1; 32], 40).await.unwrap(),
            RefreshUse::Reused {
                user_id: uid,
                revoked: 3
            },
            "{}",
            b.name
        );
        assert_eq!(a.live_refresh_count(uid, 40).await.unwrap(), 0);
        assert_eq!(
            a.use_refresh(&[3; 32], 41).await.unwrap(),
            RefreshUse::Invalid
        );
        // Unknown and expired tokens are invalid.
        assert_eq!(
            a.use_refresh(&[9; 32], 41).await.unwrap(),
            RefreshUse::Invalid
        );
        let other = NewRefreshToken {
            family: [8; 16],
            ..tok(4, 50)
        };
        a.insert_refresh(&other, 40).await.unwrap();
        assert_eq!(
            a.use_refresh(&[4; 32], 60).await.unwrap(),
            RefreshUse::Invalid
        );
        // Logout revokes the family; a user-wide revoke covers the rest.
        a.insert_refresh(
            &NewRefreshToken {
                family: [5; 16],
                ..tok(5, 1000)
            },
            70,
        )
        .await
        .unwrap();
        a.insert_refresh(
            &NewRefreshToken {
                family: [6; 16],
                ..tok(6, 1000)
            },
            70,
        )
        .await
        .unwrap();
        assert_eq!(a.revoke_refresh(&[5; 32]).await.unwrap(), 1);
        assert_eq!(a.revoke_refresh(&[99; 32]).await.unwrap(), 0);
        assert_eq!(a.live_refresh_count(uid, 70).await.unwrap(), 1);
        assert_eq!(a.revoke_user_tokens(uid).await.unwrap(), 2); // the live one and the expired one
        assert_eq!(a.live_refresh_count(uid, 70).await.unwrap(), 0);
        assert_eq!(a.user(uid).await.unwrap().unwrap().session_gen, 0);
        // Ending the sessions revokes the refresh tokens and bumps the
        // generation, in one transaction.
        a.insert_refresh(
            &NewRefreshToken {
                family: [7; 16],
                ..tok(7, 1000)
            },
            80,
        )
        .await
        .unwrap();
        assert_eq!(a.end_sessions(uid).await.unwrap(), 1, "{}", b.name);
        assert_eq!(a.live_refresh_count(uid, 80).await.unwrap(), 0);
        assert_eq!(a.user(uid).await.unwrap().unwrap().session_gen, 1);
        assert_eq!(a.end_sessions(uid).await.unwrap(), 0);
        assert_eq!(a.user(uid).await.unwrap().unwrap().session_gen, 2);
        assert_eq!(a.delete_expired_refresh(100).await.unwrap(), 1);
        // A refresh token is stored only under the user's current session
        // generation (now 2): one issued from a row read before the change
        // is refused, so no login or refresh racing a change keeps a token.
        let at = |n: u8, session_gen: i64| NewRefreshToken {
            family: [9; 16],
            session_gen,
            ..tok(n, 1000)
        };
        assert!(
            !a.insert_refresh(&at(10, 1), 90).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            a.insert_refresh(&at(11, 2), 90).await.unwrap(),
            "{}",
            b.name
        );
        assert_eq!(
            a.use_refresh(&[11; 32], 91).await.unwrap(),
            RefreshUse::Rotated {
                user_id: uid,
                family: [9; 16],
                session_gen: 2
            },
            "{}",
            b.name
        );
        assert!(a.insert_refresh(&at(12, 2), 91).await.unwrap());
        // A password change bumps the generation and revokes the tokens
        // together; the token's generation is now stale.
        assert!(a.set_password(uid, "new-hash", 92).await.unwrap());
        assert_eq!(
            a.live_refresh_count(uid, 92).await.unwrap(),
            0,
            "{}",
            b.name
        );
        assert_eq!(a.user(uid).await.unwrap().unwrap().session_gen, 3);
        assert!(
            !a.insert_refresh(&at(13, 2), 93).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            !a.insert_refresh(
                &NewRefreshToken {
                    user_id: uid + 1000,
                    ..at(14, 0)
                },
                93
            )
            .await
            .unwrap()
        );
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_audit() {
    for b in sql_backends().await {
        let a = b.sql.clone().unwrap().auth();
        let t1 = Tenant::new("one").unwrap();
        let t2 = Tenant::new("two").unwrap();
        let key = |n: u8, name: &str, t: &Tenant| NewApiKey {
            hash: [n; 32],
            prefix: format!("kk_{n}"),
            name: name.into(),
            tenant: t.clone(),
            scopes: vec![Scope::Ingest, Scope::Read],
            expires_at: (n == 2).then_some(12_345),
            created_by: "tester".into(),
        };
        let k1 = a.create_api_key(&key(1, "shipper", &t1), 5).await.unwrap();
        let k2 = a.create_api_key(&key(2, "grafana", &t2), 6).await.unwrap();
        let got = a.api_key_by_hash(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(
            (
                got.id,
                got.name.as_str(),
                got.tenant.as_str(),
                got.scopes.clone(),
                got.expires_at,
                got.revoked
            ),
            (
                k1,
                "shipper",
                "one",
                vec![Scope::Ingest, Scope::Read],
                None,
                false
            ),
            "{}",
            b.name
        );
        assert_eq!(got.hash, vec![1; 32]);
        assert_eq!(
            a.api_key_by_hash(&[2; 32])
                .await
                .unwrap()
                .unwrap()
                .expires_at,
            Some(12_345)
        );
        assert!(a.api_key_by_hash(&[3; 32]).await.unwrap().is_none());
        assert_eq!(a.api_keys(Some(&t1)).await.unwrap().len(), 1);
        assert_eq!(a.api_keys(None).await.unwrap().len(), 2);
        // Another tenant cannot revoke it; its own can, once.
        assert!(!a.revoke_api_key(k1, Some(&t2)).await.unwrap());
        assert!(a.revoke_api_key(k1, Some(&t1)).await.unwrap());
        assert!(!a.revoke_api_key(k1, Some(&t1)).await.unwrap());
        assert!(a.api_key_by_hash(&[1; 32]).await.unwrap().unwrap().revoked);
        assert_eq!(a.revoke_api_key_named(&t2, "grafana").await.unwrap(), 1);
        assert!(a.api_keys(None).await.unwrap().iter().all(|k| k.revoked));
        let _ = k2;

        for (i, t) in [&t1, &t2, &t1].into_iter().enumerate() {
            a.audit(&AuditEntry {
                at: 100 + i as i64,
                tenant: t.clone(),
                actor: "ann".into(),
                action: "user.create".into(),
                target: format!("user{i}"),
                source: "127.0.0.1".into(),
                result: "ok".into(),
                detail: "x".repeat(if i == 2 { 10_000 } else { 3 }),
            })
            .await
            .unwrap();
        }
        let all = a.audit_log(None, None, 100).await.unwrap();
        assert_eq!(all.len(), 3, "{}", b.name);
        assert!(all[0].id > all[1].id && all[1].id > all[2].id);
        assert_eq!(all[0].entry.detail.len(), 4096);
        let one = a.audit_log(Some(&t1), None, 100).await.unwrap();
        assert_eq!(
            one.iter()
                .map(|r| r.entry.target.as_str())
                .collect::<Vec<_>>(),
            vec!["user2", "user0"]
        );
        let page = a.audit_log(Some(&t1), Some(one[0].id), 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].entry.target, "user0");
        b.cleanup().await;
    }
}
