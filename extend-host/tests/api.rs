//! The management API over real HTTP against an in-process host.

#[macro_use]
mod common;

use base64::Engine as _;
use serde_json::{Value, json};

fn claims(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let dec = |p: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    (dec(parts.next().unwrap()), dec(parts.next().unwrap()))
}

async fn refusal(r: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], status);
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains(needle), "`{msg}` should contain `{needle}`");
}

on_both_stores! {
    #[tokio::test]
    async fn tenant_tokens_are_typless_jwts_scoped_to_their_container() {
        let env = start().await;
        let r = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(env.master())
            .json(&json!({"ten": "acme"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let tenant = r.text().await.unwrap();
        let (header, c) = claims(&tenant);
        assert_eq!(
            header.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["alg", "kid"]
        );
        assert_eq!(
            (c["ten"].as_str(), c["dd"].as_u64()),
            (Some("acme"), Some(1))
        );

        env.install("acme", "hello", "module.exports = cb => cb(null, 1)")
            .await;
        env.install("globex", "hello", "module.exports = cb => cb(null, 1)")
            .await;
        let own = env
            .http
            .get(env.url("/api/webtask/acme"))
            .bearer_auth(&tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(own.status(), 200);
        let other = env
            .http
            .get(env.url("/api/webtask/globex"))
            .bearer_auth(&tenant)
            .send()
            .await
            .unwrap();
        refusal(
            other,
            403,
            "not authorized to perform operation on tenant `globex`",
        )
        .await;
        // `?key=` is accepted where the original accepted it.
        let by_key = env
            .http
            .get(env.url(&format!("/api/webtask/acme?key={tenant}")))
            .send()
            .await
            .unwrap();
        assert_eq!(by_key.status(), 200);
    }

    #[tokio::test]
    async fn every_refusal_is_403_json_naming_the_reason() {
        let env = start().await;
        refusal(
            env.http
                .get(env.url("/api/webtask/acme"))
                .send()
                .await
                .unwrap(),
            403,
            "without Authorization header",
        )
        .await;
        let basic = env
            .http
            .get(env.url("/api/webtask/acme"))
            .header("authorization", "Basic abc")
            .send()
            .await
            .unwrap();
        refusal(basic, 403, "unexpected Authorization header").await;
        refusal(
            env.http
                .get(env.url("/api/webtask/acme"))
                .bearer_auth("x.y.z")
                .send()
                .await
                .unwrap(),
            403,
            "not a JWT",
        )
        .await;
        let tenant = env.tenant_token("acme,initech").await;
        let widen = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(&tenant)
            .json(&json!({"ten": "acme,globex"}))
            .send()
            .await
            .unwrap();
        refusal(widen, 403, "subset of tenants").await;
        let bounded = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(env.master())
            .json(&json!({"ten": "acme", "exp": "4000000000"}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let extend = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(&bounded)
            .json(&json!({"exp": 4100000000u64}))
            .send()
            .await
            .unwrap();
        refusal(extend, 403, "cannot extend the expiration").await;
        // Delegation depth: tenant (dd 1) -> child (dd 0) -> nothing.
        let child = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(&tenant)
            .json(&json!({"ten": "acme", "dd": 5}))
            .send()
            .await
            .unwrap();
        let child = child.text().await.unwrap();
        assert_eq!(claims(&child).1["dd"], 0);
        let grandchild = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(&child)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        refusal(
            grandchild,
            403,
            "cannot be used to issue new webtask tokens",
        )
        .await;
        let unknown = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(env.master())
            .json(&json!({"zzz": 1}))
            .send()
            .await
            .unwrap();
        refusal(unknown, 400, "unsupported claim `zzz`").await;
        let desc = env
            .http
            .get(env.url("/api/description"))
            .send()
            .await
            .unwrap();
        assert_eq!(desc.status(), 404);
    }

    #[tokio::test]
    async fn revocation_cascades_to_tokens_issued_from_the_revoked_one() {
        let env = start().await;
        let tenant = env.tenant_token("acme").await;
        let child = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(&tenant)
            .json(&json!({"ten": "acme", "dd": 0}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let list = |t: String| {
            let env = &env;
            async move {
                env.http
                    .get(env.url("/api/webtask/acme"))
                    .bearer_auth(t)
                    .send()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(list(child.clone()).await.status(), 200);
        // A child cannot revoke its parent.
        let up = env
            .http
            .post(env.url(&format!("/api/tokens/revoke?token={tenant}")))
            .bearer_auth(&child)
            .send()
            .await
            .unwrap();
        refusal(up, 403, "issued from").await;
        let r = env
            .http
            .post(env.url(&format!("/api/tokens/revoke?token={tenant}")))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        refusal(list(tenant.clone()).await, 403, "token is revoked").await;
        refusal(list(child).await, 403, "token is revoked").await;
        let master_self = env
            .http
            .post(env.url(&format!("/api/tokens/revoke?token={}", env.master())))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        refusal(master_self, 403, "master token cannot be revoked").await;
    }

    #[tokio::test]
    async fn issue_with_jtn_creates_the_webtask_and_inspect_decrypts_into_ectx() {
        let env = start().await;
        let tenant = env.tenant_token("acme").await;
        // What `wt create` sends, numbers as strings included.
        let r = env
            .http
            .post(env.url("/api/tokens/issue"))
            .bearer_auth(&tenant)
            .json(&json!({"ten":"acme","dd":"0","code":"module.exports = cb => cb(null, {ok: true})","ectx":{"foo":"bar"},
                          "meta":{"auth0-extension-type":"on-new-lead"},"mb":1,"dr":1,"jtn":"hello"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["location"],
            env.host.webtask_url("acme", "hello")
        );
        let token = r.text().await.unwrap();
        assert_eq!(claims(&token).1["jtn"], "hello");
        assert_eq!(
            env.run_as_platform("acme", "hello", json!({})).await.2,
            json!({"ok": true})
        );

        let inspect = |q: &'static str| {
            let (env, tenant, token) = (&env, tenant.clone(), token.clone());
            async move {
                let r = env
                    .http
                    .get(env.url(&format!("/api/tokens/inspect?token={token}{q}")))
                    .bearer_auth(tenant)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        };
        let plain = inspect("").await;
        assert_eq!(plain["jtn"], "hello");
        assert_eq!(plain["webtask_url"], env.host.webtask_url("acme", "hello"));
        assert!(
            plain.get("ectx").is_none() && plain.get("meta").is_none() && plain.get("code").is_none()
        );
        let full = inspect("&decrypt=true&fetch_code=true&meta=1").await;
        // An extension of a point given no run secret gets one.
        assert_eq!(full["ectx"]["foo"], "bar");
        let run_secret = full["ectx"]["auth0-extension-secret"].as_str().unwrap();
        assert_eq!(run_secret.len(), 64, "{full}");
        assert_eq!(full["ectx"].as_object().unwrap().len(), 2, "{full}");
        assert_eq!(full["meta"], json!({"auth0-extension-type": "on-new-lead"}));
        assert_eq!(full["code"], "module.exports = cb => cb(null, {ok: true})");
        let other = env.tenant_token("globex").await;
        let r = env
            .http
            .get(env.url(&format!("/api/tokens/inspect?token={token}")))
            .bearer_auth(other)
            .send()
            .await
            .unwrap();
        refusal(r, 403, "tenant `acme`").await;
    }

    #[tokio::test]
    async fn webtask_crud_meta_filters_and_paging() {
        let env = start().await;
        let code = "module.exports = cb => cb(null, 1)";
        for (name, ty, extra) in [
            ("a", "on-new-lead", "x"),
            ("b", "on-new-lead", "y"),
            ("c", "enrich", "x"),
        ] {
            let w = env
                .put(
                    "acme",
                    name,
                    code,
                    json!({"k": "secret-value", "auth0-extension-secret": "run"}),
                    json!({"auth0-extension-type": ty, "extra": extra}),
                )
                .await;
            assert_eq!(w["webtask_url"], env.host.webtask_url("acme", name));
            assert!(w.get("secrets").is_none());
        }
        let list = |q: &'static str| {
            let env = &env;
            async move {
                let r = env
                    .http
                    .get(env.url(&format!("/api/webtask/acme{q}")))
                    .bearer_auth(env.master())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let text = r.text().await.unwrap();
                assert!(
                    !text.contains("secret-value"),
                    "list responses carry no secrets"
                );
                let items: Vec<Value> = serde_json::from_str(&text).unwrap();
                items
                    .iter()
                    .map(|i| i["name"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(list("").await, ["a", "b", "c"]);
        assert_eq!(
            list("?meta=auth0-extension-type:on-new-lead").await,
            ["a", "b"]
        );
        assert_eq!(
            list("?meta=auth0-extension-type:on-new-lead&meta=extra:x").await,
            ["a"]
        );
        assert_eq!(list("?offset=1&limit=1").await, ["b"]);
        let item: Value = env
            .http
            .get(env.url("/api/webtask/acme?limit=1"))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys: Vec<&String> = item[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["container", "meta", "name", "token", "webtask_url"]);

        let get = |q: &'static str| {
            let env = &env;
            async move {
                env.http
                    .get(env.url(&format!("/api/webtask/acme/a{q}")))
                    .bearer_auth(env.master())
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let plain = get("").await;
        assert!(plain.get("secrets").is_none() && plain.get("code").is_none());
        let full = get("?decrypt=true&fetch_code=1").await;
        assert_eq!(
            (full["secrets"]["k"].as_str(), full["code"].as_str()),
            (Some("secret-value"), Some(code))
        );

        // PUT without secrets keeps them; meta is replaced.
        let r = env
            .http
            .put(env.url("/api/webtask/acme/a"))
            .bearer_auth(env.master())
            .json(&json!({"code": code, "meta": {"m": "2"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let full = get("?decrypt=1").await;
        assert_eq!(
            (full["secrets"].clone(), full["meta"].clone()),
            (
                json!({"k": "secret-value", "auth0-extension-secret": "run"}),
                json!({"m": "2"})
            )
        );

        let del = env
            .http
            .delete(env.url("/api/webtask/acme/a"))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        assert_eq!(del.status(), 204);
        let again = env
            .http
            .delete(env.url("/api/webtask/acme/a"))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        refusal(again, 404, "No such webtask: a").await;
        let run = env.run("acme", "a", json!({})).await;
        assert_eq!((run.0, run.1.as_str()), (404, "proxy"));
    }

    #[tokio::test]
    async fn names_bodies_and_code_sizes_are_checked() {
        let env = start().await;
        let bad = env
            .http
            .put(env.url("/api/webtask/acme/bad%20name"))
            .bearer_auth(env.master())
            .json(&json!({"code": "x"}))
            .send()
            .await
            .unwrap();
        refusal(bad, 400, "use 1 to 64 characters").await;
        let long = "x".repeat(65);
        let r = env
            .http
            .get(env.url(&format!("/api/webtask/{long}")))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        refusal(r, 400, "invalid container name").await;
        let big = json!({"code": "x".repeat(130_000)});
        let r = env
            .http
            .put(env.url("/api/webtask/acme/big"))
            .bearer_auth(env.master())
            .json(&big)
            .send()
            .await
            .unwrap();
        refusal(r, 413, "Request body size exceeds 122880").await;
        // Both stores refuse NUL in text: the API says so before either sees it.
        for (body, needle) in [
            (json!({"code": "a\u{0}b"}), "the code contains a NUL"),
            (json!({"code": "x", "meta": {"k": "v\u{0}"}}), "the metadata contains a NUL"),
        ] {
            let r = env
                .http
                .put(env.url("/api/webtask/acme/nul"))
                .bearer_auth(env.master())
                .json(&body)
                .send()
                .await
                .unwrap();
            refusal(r, 400, needle).await;
        }
        let code = format!(
            "module.exports = cb => cb(null, 1); //{}",
            "x".repeat(100_000)
        );
        let r = env
            .http
            .put(env.url("/api/webtask/acme/big"))
            .bearer_auth(env.master())
            .json(&json!({"code": code}))
            .send()
            .await
            .unwrap();
        refusal(r, 400, "the limit is 100000 bytes").await;
        let r = env
            .http
            .put(env.url("/api/webtask/acme/nocode"))
            .bearer_auth(env.master())
            .json(&json!({"meta": {}}))
            .send()
            .await
            .unwrap();
        refusal(r, 400, "`code` is required").await;
        // A bad field is named as a field of the webtask, not as a token "claim".
        let r = env
            .http
            .put(env.url("/api/webtask/acme/badsecrets"))
            .bearer_auth(env.master())
            .json(&json!({"code": "module.exports = cb => cb()", "secrets": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        let msg = body["message"].as_str().unwrap();
        assert!(
            msg.starts_with(
                "field `secrets` of the webtask is not valid: must be an object of strings"
            ),
            "{msg}"
        );
        assert!(!msg.contains("claim"), "{msg}");
        let r = env
            .http
            .get(env.url("/api/webtask/acme/missing"))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        refusal(r, 404, "No such webtask: missing").await;
    }

    #[tokio::test]
    async fn the_changes_stream_tells_every_write_and_resumes_from_last_event_id() {
        let env = start().await;
        let mut all = common::Changes::open(&env, "", None).await;
        let mut acme = common::Changes::open(&env, "?container=acme", None).await;
        env.install("globex", "g", "module.exports = cb => cb(null, 1)").await;
        env.install("acme", "a", "module.exports = cb => cb(null, 1)").await;
        let r = env
            .http
            .delete(env.url("/api/webtask/acme/a"))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let g = all.next().await;
        assert_eq!(g.event, "webtask");
        assert_eq!(
            (g.data["container"].as_str(), g.data["name"].as_str(), g.data["deleted"].as_bool()),
            (Some("globex"), Some("g"), Some(false))
        );
        let put = all.next().await;
        let del = all.next().await;
        assert_eq!((put.data["name"].as_str(), del.data["deleted"].as_bool()), (Some("a"), Some(true)));
        assert!(g.id < put.id && put.id < del.id, "ids increase: {g:?} {put:?} {del:?}");
        assert_eq!(put.id, put.data["id"].as_u64());
        // The filtered stream sees acme's changes only.
        assert_eq!(acme.next().await, put);
        assert_eq!(acme.next().await, del);

        // A client that saw `g` gets what came after it, then live changes.
        let mut resumed = common::Changes::open(&env, "", g.id).await;
        assert_eq!(resumed.next().await, put);
        assert_eq!(resumed.next().await, del);
        env.install("acme", "b", "module.exports = cb => cb(null, 1)").await;
        assert_eq!(resumed.next().await.data["name"], "b");

        // Tenants watch their own container only; bad ids are named.
        let tenant = env.tenant_token("acme").await;
        for (query, status, needle) in [
            ("", 403, "needs the master token"),
            ("?container=globex", 403, "globex"),
        ] {
            let r = env
                .http
                .get(env.url(&format!("/api/changes{query}")))
                .bearer_auth(&tenant)
                .send()
                .await
                .unwrap();
            refusal(r, status, needle).await;
        }
        let r = env
            .http
            .get(env.url("/api/changes?container=acme"))
            .bearer_auth(&tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = env
            .http
            .get(env.url("/api/changes"))
            .bearer_auth(env.master())
            .header("last-event-id", "yesterday")
            .send()
            .await
            .unwrap();
        refusal(r, 400, "Last-Event-ID").await;
    }

    #[tokio::test]
    async fn a_published_catalog_is_kept_with_its_previous_version_and_bounds_installs() {
        let env = start().await;
        let catalog = |names: &[&str]| {
            json!({ "points": names.iter().map(|n| json!({
                "name": n, "mode": "sync", "timeout_ms": 2000,
                "payload_schema": {"type": "object"}, "response_schema": {"type": "object"},
            })).collect::<Vec<_>>() })
        };
        let publish = |body: Value, token: String| {
            env.http
                .put(env.url("/api/catalog"))
                .bearer_auth(token)
                .json(&body)
                .send()
        };
        let get = || env.http.get(env.url("/api/catalog")).bearer_auth(env.master()).send();
        // Before any catalog: 404, and installs name any point.
        refusal(get().await.unwrap(), 404, "no catalog has been published").await;
        env.put("acme", "early", "module.exports = cb => cb()", json!({}), json!({"auth0-extension-type": "anything"}))
            .await;

        let r = publish(catalog(&["on-new-lead", "lead-archived"]), env.master().to_owned()).await.unwrap();
        assert_eq!(r.status(), 200);
        let first: Value = r.json().await.unwrap();
        assert_eq!(first["version"], 1);
        assert_eq!(first["points"], json!(["on-new-lead", "lead-archived"]));
        let r = publish(catalog(&["on-new-lead"]), env.master().to_owned()).await.unwrap();
        assert_eq!(r.status(), 200);
        let tenant = env.tenant_token("acme").await;
        let r = env.http.get(env.url("/api/catalog")).bearer_auth(&tenant).send().await.unwrap();
        assert_eq!(r.status(), 200, "any valid token reads it");
        let got: Value = r.json().await.unwrap();
        assert_eq!(got["version"], 2);
        assert_eq!(got["catalog"], catalog(&["on-new-lead"]));
        assert_eq!(got["previous"]["version"], 1);
        assert_eq!(got["previous"]["catalog"], catalog(&["on-new-lead", "lead-archived"]));
        assert!(got["published_at"].as_i64().unwrap() >= got["previous"]["published_at"].as_i64().unwrap());

        // Installs now name a published point.
        let put = |name: &str, point: &str| {
            env.http
                .put(env.url(&format!("/api/webtask/acme/{name}")))
                .bearer_auth(env.master())
                .json(&json!({"code": "module.exports = cb => cb()", "meta": {"auth0-extension-type": point}}))
                .send()
        };
        assert_eq!(put("ok", "on-new-lead").await.unwrap().status(), 200);
        refusal(
            put("stale", "lead-archived").await.unwrap(),
            400,
            "`lead-archived`, which names no extension point of the published catalog (version 2); the published points are `on-new-lead`",
        )
        .await;
        // Webtasks that are not extensions (no type) are not concerned.
        env.install("acme", "plain", "module.exports = cb => cb()").await;

        // Only the master token publishes; bad documents are named.
        refusal(publish(catalog(&["x"]), tenant.clone()).await.unwrap(), 403, "needs the master token").await;
        for (body, needle) in [
            (json!([]), "a `points` array"),
            (json!({"points": [{"mode": "sync"}]}), "point 0 of the catalog needs a `name`"),
            (json!({"points": [{"name": "a", "mode": "later"}]}), "point `a` needs a `mode`"),
            (json!({"points": [{"name": "a", "mode": "sync"}, {"name": "a", "mode": "async"}]}), "names point `a` twice"),
        ] {
            refusal(publish(body, env.master().to_owned()).await.unwrap(), 400, needle).await;
        }
        let got: Value = get().await.unwrap().json().await.unwrap();
        assert_eq!(got["version"], 2, "refused documents change nothing");
    }

    #[tokio::test]
    async fn catalog_usage_lists_a_points_extensions_in_every_container() {
        let env = start().await;
        for (c, n, p) in [("globex", "b", "score"), ("acme", "a", "score"), ("acme", "z", "other")] {
            env.put(c, n, "module.exports = cb => cb()", json!({}), json!({"auth0-extension-type": p})).await;
        }
        let usage = |q: &str, token: String| {
            env.http.get(env.url(&format!("/api/catalog/usage{q}"))).bearer_auth(token).send()
        };
        let r = usage("?point=score&point=none", env.master().to_owned()).await.unwrap();
        assert_eq!(r.status(), 200);
        let got: Value = r.json().await.unwrap();
        let rows: Vec<(String, String, String)> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["point"].as_str().unwrap().into(), v["container"].as_str().unwrap().into(), v["name"].as_str().unwrap().into()))
            .collect();
        assert_eq!(
            rows,
            [("score".into(), "acme".into(), "a".into()), ("score".into(), "globex".into(), "b".into())]
        );
        let tenant = env.tenant_token("acme").await;
        refusal(usage("?point=score", tenant).await.unwrap(), 403, "needs the master token").await;
        refusal(usage("", env.master().to_owned()).await.unwrap(), 400, "`?point=name`").await;
    }

    #[tokio::test]
    async fn every_live_write_is_a_version_and_a_rollback_makes_an_old_one_live() {
        let env = start().await;
        let tenant = env.tenant_token("acme").await;
        let put = |code: &str, secrets: Value, meta: Value| {
            env.http
                .put(env.url("/api/webtask/acme/w"))
                .bearer_auth(&tenant)
                .json(&json!({"code": code, "secrets": secrets, "meta": meta}))
                .send()
        };
        assert_eq!(put("module.exports = cb => cb(null, 1)", json!({"k": "one", "old": "x"}), json!({"m": "1"})).await.unwrap().status(), 200);
        assert_eq!(put("module.exports = cb => cb(null, 2)", json!({"k": "two"}), json!({"m": "2"})).await.unwrap().status(), 200);
        let get = |path: &str| env.http.get(env.url(path)).bearer_auth(&tenant).send();
        let history: Value = get("/api/webtask/acme/w/versions").await.unwrap().json().await.unwrap();
        let history = history.as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!((history[0]["version"].as_u64(), history[1]["version"].as_u64()), (Some(2), Some(1)));
        assert_eq!(history[1]["meta"], json!({"m": "1"}));
        assert_eq!(history[1]["secrets"], json!(["k", "old"]), "names only");
        assert!(history[0].get("code").is_none());
        assert!(!history[0]["deployed_by"].as_str().unwrap().is_empty());
        let one: Value = get("/api/webtask/acme/w/versions/1").await.unwrap().json().await.unwrap();
        assert_eq!(one["code"], "module.exports = cb => cb(null, 1)");
        assert!(!one.to_string().contains("one"), "no secret value is versioned: {one}");

        let r = env
            .http
            .post(env.url("/api/webtask/acme/w/versions/1/rollback"))
            .bearer_auth(&tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rolled: Value = r.json().await.unwrap();
        assert_eq!((rolled["rolled_back_to"].as_u64(), rolled["meta"].clone()), (Some(1), json!({"m": "1"})));
        assert_eq!(rolled["secrets_missing"], json!(["old"]));
        assert_eq!(env.run("acme", "w", json!({})).await.2, json!(1), "the old code is live");
        let history: Value = get("/api/webtask/acme/w/versions").await.unwrap().json().await.unwrap();
        assert_eq!(history[0]["version"], 3, "a rollback is a new version");

        refusal(get("/api/webtask/acme/w/versions/9").await.unwrap(), 404, "the kept versions are 3, 2, 1").await;
        refusal(get("/api/webtask/acme/w/versions/x").await.unwrap(), 400, "not a version number").await;
        refusal(get("/api/webtask/acme/none/versions").await.unwrap(), 404, "none").await;
        let other = env.tenant_token("globex").await;
        let r = env.http.get(env.url("/api/webtask/acme/w/versions")).bearer_auth(&other).send().await.unwrap();
        assert_eq!(r.status(), 403);

        // The last 10 are kept; a delete takes the history with it.
        for i in 0..12 {
            env.install("acme", "many", &format!("module.exports = cb => cb(null, {i})")).await;
        }
        let history: Value = env.http.get(env.url("/api/webtask/acme/many/versions")).bearer_auth(env.master()).send().await.unwrap().json().await.unwrap();
        let kept: Vec<u64> = history.as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect();
        assert_eq!(kept, (3..=12).rev().collect::<Vec<_>>());
        let r = env.http.delete(env.url("/api/webtask/acme/many")).bearer_auth(env.master()).send().await.unwrap();
        assert_eq!(r.status(), 204);
        env.install("acme", "many", "module.exports = cb => cb(null, 0)").await;
        let history: Value = env.http.get(env.url("/api/webtask/acme/many/versions")).bearer_auth(env.master()).send().await.unwrap().json().await.unwrap();
        assert_eq!(history[0]["version"], 1, "a new webtask of the same name starts over");
    }

    #[tokio::test]
    async fn a_draft_runs_for_its_container_only_and_goes_live_when_deployed() {
        let env = start().await;
        let tenant = env.tenant_token("acme").await;
        env.put("acme", "w", "module.exports = (ctx, cb) => cb(null, 'live ' + ctx.secrets.k)", json!({"k": "one"}), json!({"auth0-extension-type": "p"}))
            .await;
        let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
            let mut r = env.http.request(method, env.url(path)).bearer_auth(&tenant);
            if let Some(b) = body {
                r = r.json(&b);
            }
            r.send()
        };
        refusal(call(reqwest::Method::GET, "/api/webtask/acme/w/draft", None).await.unwrap(), 404, "has no draft").await;
        let r = call(
            reqwest::Method::PUT,
            "/api/webtask/acme/w/draft",
            Some(json!({"code": "module.exports = (ctx, cb) => { console.log('drafting'); cb(null, 'draft ' + ctx.secrets.k + ' ' + ctx.body.x); }", "meta": {"auth0-extension-type": "p", "v": "2"}})),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let saved: Value = r.json().await.unwrap();
        assert_eq!(saved["secrets"], Value::Null, "the live secrets apply");
        // The URL and discovery still see the live webtask.
        assert_eq!(env.run_as_platform("acme", "w", json!({})).await.2, json!("live one"));
        let listed: Value = env.http.get(env.url("/api/webtask/acme?meta=v:2")).bearer_auth(&tenant).send().await.unwrap().json().await.unwrap();
        assert_eq!(listed, json!([]));
        // The container's token runs the draft, with the live secrets; its
        // log records name the draft.
        let mut logs = common::LogStream::open(&env, "acme", &tenant).await;
        let r = call(reqwest::Method::POST, "/api/webtask/acme/w/draft/run", Some(json!({"x": 7}))).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!("draft one 7"));
        let record = logs.next_record().await;
        assert_eq!((record["msg"].as_str(), record["webtask"].as_str()), (Some("drafting"), Some("w#draft")));
        // Secrets of its own: shown by name only.
        call(reqwest::Method::PUT, "/api/webtask/acme/w/draft", Some(json!({"code": "module.exports = (ctx, cb) => cb(null, 'draft ' + ctx.secrets.k)", "secrets": {"k": "two"}})))
            .await
            .unwrap();
        let got: Value = call(reqwest::Method::GET, "/api/webtask/acme/w/draft", None).await.unwrap().json().await.unwrap();
        assert_eq!(got["secrets"], json!(["k"]));
        assert!(!got.to_string().contains("two"), "{got}");
        let ran: Value = call(reqwest::Method::POST, "/api/webtask/acme/w/draft/run", None).await.unwrap().json().await.unwrap();
        assert_eq!(ran, json!("draft two"));

        // Another tenant reaches none of it.
        let other = env.tenant_token("globex").await;
        let r = env.http.post(env.url("/api/webtask/acme/w/draft/run")).bearer_auth(&other).send().await.unwrap();
        assert_eq!(r.status(), 403);

        let r = call(reqwest::Method::POST, "/api/webtask/acme/w/draft/deploy", None).await.unwrap();
        assert_eq!(r.status(), 200);
        let live: Value = r.json().await.unwrap();
        assert!(live["deployed_draft_saved_at"].as_i64().is_some());
        // The draft's save left out meta: the live webtask names no point now.
        assert_eq!(env.run("acme", "w", json!({})).await.2, json!("draft two"));
        refusal(call(reqwest::Method::GET, "/api/webtask/acme/w/draft", None).await.unwrap(), 404, "has no draft").await;
        let history: Value = call(reqwest::Method::GET, "/api/webtask/acme/w/versions", None).await.unwrap().json().await.unwrap();
        assert_eq!(history[0]["version"], 2);
        refusal(call(reqwest::Method::POST, "/api/webtask/acme/w/draft/deploy", None).await.unwrap(), 404, "has no draft").await;
        // A draft may precede its webtask, and be deleted.
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/new/draft", Some(json!({"code": "module.exports = cb => cb(null, 0)"}))).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(env.run("acme", "new", json!({})).await.0, 404);
        let r = call(reqwest::Method::DELETE, "/api/webtask/acme/new/draft", None).await.unwrap();
        assert_eq!(r.status(), 204);
    }

    #[tokio::test]
    async fn a_draft_keeps_its_secrets_across_saves_and_no_point_goes_live_without_a_run_secret() {
        let env = start().await;
        let tenant = env.tenant_token("acme").await;
        let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
            let mut r = env.http.request(method, env.url(path)).bearer_auth(&tenant);
            if let Some(b) = body {
                r = r.json(&b);
            }
            r.send()
        };
        let code = |v: u32| format!("module.exports = (ctx, cb) => cb(null, {{ v: {v}, secrets: Object.keys(ctx.secrets) }})");
        let meta = json!({"auth0-extension-type": "on-new-lead"});
        // What the editor did: the first save sends the secret, the next does not.
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/scorer/draft",
            Some(json!({"code": code(1), "meta": meta, "secret_changes": {"auth0-extension-secret": "s3cret", "api": "k"}}))).await.unwrap();
        assert_eq!(r.status(), 200);
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/scorer/draft", Some(json!({"code": code(2), "meta": meta}))).await.unwrap();
        assert_eq!(r.status(), 200);
        let saved: Value = r.json().await.unwrap();
        assert_eq!(saved["secrets"], json!(["api", "auth0-extension-secret"]), "kept: {saved}");
        let ran: Value = call(reqwest::Method::POST, "/api/webtask/acme/scorer/draft/run", None).await.unwrap().json().await.unwrap();
        assert_eq!(ran, json!({"v": 2, "secrets": ["api", "auth0-extension-secret"]}));
        let r = call(reqwest::Method::POST, "/api/webtask/acme/scorer/draft/deploy", None).await.unwrap();
        assert_eq!(r.status(), 200);
        let open = env.run("acme", "scorer", json!({})).await;
        assert_eq!(open.0, 401, "the live extension needs its run secret: {open:?}");
        let r = env.http.post(env.url("/api/run/acme/scorer")).bearer_auth("s3cret").send().await.unwrap();
        assert_eq!(r.status(), 200);

        // An extension of a point written without a run secret gets one,
        // which discovery reads.
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/bare", Some(json!({"code": code(3), "meta": meta}))).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(env.run("acme", "bare", json!({})).await.0, 401);
        let listed = env.get_json("/api/webtask/acme?meta=auth0-extension-type:on-new-lead&decrypt=true").await;
        let bare = listed.as_array().unwrap().iter().find(|w| w["name"] == "bare").unwrap();
        let secret = bare["secrets"]["auth0-extension-secret"].as_str().unwrap();
        assert_eq!(secret.len(), 64);
        let r = env.http.post(env.url("/api/run/acme/bare")).bearer_auth(secret).send().await.unwrap();
        assert_eq!(r.status(), 200);
        // A webtask that names no point is the tenant's to leave open.
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/public", Some(json!({"code": code(4)}))).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(env.run("acme", "public", json!({})).await.0, 200);
    }

    #[tokio::test]
    async fn an_empty_name_in_a_path_is_refused_and_creates_nothing() {
        let env = start().await;
        for (method, path) in [
            (reqwest::Method::PUT, "/api/webtask/acme//draft"),
            (reqwest::Method::PUT, "/api/webtask/acme/"),
            (reqwest::Method::PUT, "/api/webtask//w"),
            (reqwest::Method::POST, "/api/webtask/acme//draft/run"),
        ] {
            let r = env.http.request(method.clone(), env.url(path)).bearer_auth(env.master())
                .json(&json!({"code": "module.exports = cb => cb(null, 1)"})).send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert!(status == 400 || status == 404 || status == 405, "{method} {path}: {status} {body}");
            assert!(body.contains("\"message\""), "{method} {path}: a JSON error: {body}");
        }
        let listed = env.get_json("/api/webtask/acme").await;
        assert_eq!(listed, json!([]), "nothing was created");
    }

    #[tokio::test]
    async fn secret_changes_set_and_remove_secrets_without_reading_them() {
        let env = start().await;
        let tenant = env.tenant_token("acme").await;
        env.put("acme", "w", "module.exports = (ctx, cb) => cb(null, ctx.secrets)", json!({"k": "one", "gone": "x"}), json!({})).await;
        let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
            let mut r = env.http.request(method, env.url(path)).bearer_auth(&tenant);
            if let Some(b) = body {
                r = r.json(&b);
            }
            r.send()
        };
        let code = "module.exports = (ctx, cb) => cb(null, ctx.secrets)";
        // On a draft: applied to the live secrets, then pinned to the draft.
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/w/draft", Some(json!({"code": code, "secret_changes": {"k": "two", "gone": null, "new": "n"}}))).await.unwrap();
        assert_eq!(r.status(), 200);
        let saved: Value = r.json().await.unwrap();
        assert_eq!(saved["secrets"], json!(["k", "new"]));
        assert!(!saved.to_string().contains("two"), "names only: {saved}");
        let ran: Value = call(reqwest::Method::POST, "/api/webtask/acme/w/draft/run", None).await.unwrap().json().await.unwrap();
        assert_eq!(ran, json!({"k": "two", "new": "n"}));
        // The next change applies to the draft's secrets, not the live ones.
        let saved: Value = call(reqwest::Method::PUT, "/api/webtask/acme/w/draft", Some(json!({"code": code, "secret_changes": {"new": null}}))).await.unwrap().json().await.unwrap();
        assert_eq!(saved["secrets"], json!(["k"]));
        assert_eq!(env.run("acme", "w", json!({})).await.2, json!({"k": "one", "gone": "x"}), "live is untouched");
        assert_eq!(call(reqwest::Method::POST, "/api/webtask/acme/w/draft/deploy", None).await.unwrap().status(), 200);
        assert_eq!(env.run("acme", "w", json!({})).await.2, json!({"k": "two"}));
        // On a live PUT: applied to the stored secrets.
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/w", Some(json!({"code": code, "secret_changes": {"extra": "e"}}))).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(env.run("acme", "w", json!({})).await.2, json!({"k": "two", "extra": "e"}));
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/w/draft", Some(json!({"code": code, "secret_changes": {"": "x"}}))).await.unwrap();
        refusal(r, 400, "a secret name in `secret_changes` is empty").await;
        let r = call(reqwest::Method::PUT, "/api/webtask/acme/w", Some(json!({"code": code, "secret_changes": {"k": 5}}))).await.unwrap();
        refusal(r, 400, "secret_changes").await;
    }

    #[tokio::test]
    async fn rename_moves_the_webtask_its_secrets_and_its_draft() {
        let env = start().await;
        let tenant = env.tenant_token("acme").await;
        env.put("acme", "w", "module.exports = (ctx, cb) => cb(null, 'live ' + ctx.secrets.k + ' ' + ctx.meta.m)", json!({"k": "one"}), json!({"m": "1"})).await;
        env.install("acme", "taken", "module.exports = cb => cb()").await;
        let rename = |from: &str, to: Value, token: String| {
            env.http
                .post(env.url(&format!("/api/webtask/acme/{from}/rename")))
                .bearer_auth(token)
                .json(&json!({ "name": to }))
                .send()
        };
        let r = env.http.put(env.url("/api/webtask/acme/w/draft")).bearer_auth(&tenant)
            .json(&json!({"code": "module.exports = cb => cb(null, 'draft')"})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        refusal(rename("w", json!("taken"), tenant.clone()).await.unwrap(), 409, "already has a webtask named `taken`").await;
        refusal(rename("w", json!("bad name"), tenant.clone()).await.unwrap(), 400, "webtask").await;
        refusal(rename("w", json!(7), tenant.clone()).await.unwrap(), 400, "{\"name\": \"new name\"}").await;
        refusal(rename("none", json!("x"), tenant.clone()).await.unwrap(), 404, "none").await;
        let other = env.tenant_token("globex").await;
        assert_eq!(rename("w", json!("w2"), other).await.unwrap().status(), 403);

        let r = rename("w", json!("w2"), tenant.clone()).await.unwrap();
        assert_eq!(r.status(), 200);
        let moved: Value = r.json().await.unwrap();
        assert_eq!((moved["name"].as_str(), moved["renamed_from"].as_str()), (Some("w2"), Some("w")));
        assert_eq!(moved["webtask_url"], env.host.webtask_url("acme", "w2"));
        assert_eq!(env.run("acme", "w2", json!({})).await.2, json!("live one 1"));
        assert_eq!(env.run("acme", "w", json!({})).await.0, 404);
        let draft = env.http.get(env.url("/api/webtask/acme/w2/draft")).bearer_auth(&tenant).send().await.unwrap();
        assert_eq!(draft.status(), 200, "the draft moved");
        let old = env.http.get(env.url("/api/webtask/acme/w/draft")).bearer_auth(&tenant).send().await.unwrap();
        assert_eq!(old.status(), 404);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_renames_are_atomic_one_wins_the_other_gets_409() {
        let mut limits = extend_host::Limits::default();
        limits.write_burst = 1000;
        let env = start_with(limits).await;
        let rename = |from: String, to: String| {
            let env = &env;
            async move {
                let r = env.http.post(env.url(&format!("/api/webtask/acme/{from}/rename")))
                    .bearer_auth(env.master()).json(&json!({ "name": to })).send().await.unwrap();
                r.status().as_u16()
            }
        };
        for round in 0..10 {
            // Two webtasks to one name: both used to answer 200, and one was lost.
            let (a, b, z) = (format!("ra{round}"), format!("rb{round}"), format!("rz{round}"));
            env.install("acme", &a, "module.exports = cb => cb(null, 'a')").await;
            env.install("acme", &b, "module.exports = cb => cb(null, 'b')").await;
            let (sa, sb) = tokio::join!(rename(a.clone(), z.clone()), rename(b.clone(), z.clone()));
            let mut statuses = [sa, sb];
            statuses.sort();
            assert_eq!(statuses, [200, 409], "round {round}");
            let (won, lost) = if sa == 200 { (&a, &b) } else { (&b, &a) };
            let listed = env.get_json("/api/webtask/acme").await;
            let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|w| w["name"].as_str()).collect();
            assert!(names.contains(&z.as_str()) && names.contains(&lost.as_str()), "round {round}: {names:?}");
            assert!(!names.contains(&won.as_str()), "round {round}: {names:?}");
            let want = if won == &a { "a" } else { "b" };
            assert_eq!(env.run("acme", &z, json!({})).await.2, json!(want));

            // One webtask to two names: it used to end up under both.
            let (c, x, y) = (format!("rc{round}"), format!("rx{round}"), format!("ry{round}"));
            env.install("acme", &c, "module.exports = cb => cb(null, 'c')").await;
            let (sx, sy) = tokio::join!(rename(c.clone(), x.clone()), rename(c.clone(), y.clone()));
            let mut statuses = [sx, sy];
            statuses.sort();
            assert!(statuses == [200, 404] || statuses == [200, 409], "round {round}: {statuses:?}");
            let listed = env.get_json("/api/webtask/acme").await;
            let copies = listed.as_array().unwrap().iter()
                .filter(|w| [&c, &x, &y].iter().any(|n| w["name"] == json!(n))).count();
            assert_eq!(copies, 1, "round {round}: {listed}");
        }
    }

    #[tokio::test]
    async fn recorded_inputs_replay_a_draft_against_live_traffic() {
        let env = start().await;
        let tenant = env.tenant_token("acme").await;
        let payload = json!({"type": "object", "properties": {
            "x": {"type": "integer"}, "password": {"type": "string", "writeOnly": true}}});
        let catalog = json!({"points": [
            {"name": "p", "mode": "sync", "record_inputs": true, "payload_schema": payload},
            {"name": "q", "mode": "sync", "record_inputs": false, "payload_schema": payload},
        ]});
        let r = env.http.put(env.url("/api/catalog")).bearer_auth(env.master()).json(&catalog).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let live = "module.exports = (ctx, cb) => cb(null, { x: ctx.body.x * 2, pw: ctx.body.password })";
        env.put("acme", "w", live, json!({}), json!({"auth0-extension-type": "p"})).await;
        env.put("acme", "quiet", live, json!({}), json!({"auth0-extension-type": "q"})).await;
        for x in 0..25 {
            assert_eq!(env.run_as_platform("acme", "w", json!({"x": x, "password": format!("pw-{x}")})).await.0, 200);
        }
        env.run_as_platform("acme", "quiet", json!({"x": 1, "password": "pw"})).await;
        let inputs = |name: &'static str| {
            let (env, tenant) = (&env, &tenant);
            async move {
                let r = env.http.get(env.url(&format!("/api/webtask/acme/{name}/inputs"))).bearer_auth(tenant).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        };
        let recorded = common::eventually(std::time::Duration::from_secs(10), "the last 20 inputs recorded", || async {
            let got = inputs("w").await;
            (got["inputs"].as_array().unwrap().len() == 20 && got["inputs"][0]["request"]["body"]["x"] == 24).then_some(got)
        })
        .await;
        assert_eq!(recorded["recording"], true);
        let xs: Vec<i64> = recorded["inputs"].as_array().unwrap().iter().map(|i| i["request"]["body"]["x"].as_i64().unwrap()).collect();
        assert_eq!(xs, (5..25).rev().collect::<Vec<_>>(), "newest first, the last 20 kept");
        assert_eq!(recorded["inputs"][0]["request"], json!({"method": "POST", "body": {"x": 24, "password": "[redacted]"}}));
        assert!(!recorded.to_string().contains("pw-"), "writeOnly fields never stored: {recorded}");
        let quiet = inputs("quiet").await;
        assert_eq!((quiet["recording"].clone(), quiet["inputs"].clone()), (json!(false), json!([])));

        let replay = |name: &str| env.http.post(env.url(&format!("/api/webtask/acme/{name}/draft/replay"))).bearer_auth(&tenant).send();
        refusal(replay("w").await.unwrap(), 404, "has no draft").await;
        let draft = "module.exports = (ctx, cb) => cb(null, { x: ctx.body.x * 2 + (ctx.body.x === 24 ? 1 : 0), pw: ctx.body.password })";
        let r = env.http.put(env.url("/api/webtask/acme/w/draft")).bearer_auth(&tenant).json(&json!({"code": draft, "meta": {"auth0-extension-type": "p"}})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = replay("w").await.unwrap();
        assert_eq!(r.status(), 200);
        let report: Value = r.json().await.unwrap();
        assert_eq!(report["recording"], true);
        let runs = report["inputs"].as_array().unwrap();
        assert_eq!(runs.len(), 20);
        assert_eq!(runs[0]["live"], json!({"status": 200, "source": "webtask", "body": {"x": 48, "pw": "[redacted]"}}));
        assert_eq!(runs[0]["draft"], json!({"status": 200, "source": "webtask", "body": {"x": 49, "pw": "[redacted]"}}));
        let changed = runs.iter().filter(|r| r["live"] != r["draft"]).count();
        assert_eq!(changed, 1);
        // Replays are not live traffic: nothing more was recorded.
        assert_eq!(inputs("w").await["inputs"][0]["request"]["body"]["x"], 24);

        // A draft of a webtask that is not deployed has nothing to compare with.
        let r = env.http.put(env.url("/api/webtask/acme/fresh/draft")).bearer_auth(&tenant).json(&json!({"code": draft})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        refusal(replay("fresh").await.unwrap(), 404, "is not deployed").await;
        // Deleting the webtask deletes its recordings.
        let r = env.http.delete(env.url("/api/webtask/acme/w")).bearer_auth(&tenant).send().await.unwrap();
        assert_eq!(r.status(), 204);
        env.put("acme", "w", live, json!({}), json!({"auth0-extension-type": "p"})).await;
        assert_eq!(inputs("w").await["inputs"], json!([]));
    }
}

#[tokio::test]
async fn the_editor_is_served_from_the_binary_and_the_api_answers_other_origins() {
    let env = common::start().await;
    let get = |path: &str| env.http.get(env.url(path)).send();
    let r = get("/editor.js").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(r.text().await.unwrap().contains("global.ExtendEditor"));
    let r = get("/editor/monaco/vs/loader.js").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=86400");
    // Precompressed: brotli or gzip as Accept-Encoding asks, the same bytes
    // once decoded, the versioned URL cached as immutable.
    let worker = "/editor/monaco-0.52.2/vs/language/typescript/tsWorker.js";
    let fetch = |coding: &'static str| {
        let url = env.url(worker);
        let http = env.http.clone();
        async move {
            let r = http
                .get(url)
                .header("accept-encoding", coding)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["vary"], "accept-encoding");
            assert_eq!(
                r.headers()["cache-control"],
                "public, max-age=31536000, immutable"
            );
            let encoding = r
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned());
            (encoding, r.bytes().await.unwrap().to_vec())
        }
    };
    let (none, plain) = fetch("identity").await;
    assert_eq!(none, None);
    let (br, packed) = fetch("gzip, deflate, br").await;
    assert_eq!(br.as_deref(), Some("br"));
    let mut unpacked = Vec::new();
    brotli::BrotliDecompress(&mut &packed[..], &mut unpacked).unwrap();
    assert_eq!(unpacked, plain, "brotli decodes to the file");
    let (gz, gzipped) = fetch("gzip").await;
    assert_eq!(gz.as_deref(), Some("gzip"));
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gzipped[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, plain, "gzip decodes to the file");
    assert!(
        packed.len() < gzipped.len() && gzipped.len() * 3 < plain.len(),
        "brotli {} B < gzip {} B < a third of {} B",
        packed.len(),
        gzipped.len(),
        plain.len()
    );
    let license = get("/editor/monaco/LICENSE")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(license.contains("MIT License"), "{license}");
    refusal(
        get("/editor/nothing.js").await.unwrap(),
        404,
        "no editor file at /editor/nothing.js",
    )
    .await;
    refusal(
        get("/editor/edit.html").await.unwrap(),
        404,
        "no editor file",
    )
    .await;
    for path in ["/edit/acme", "/edit/v2/acme", "/edit/canary/acme"] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert!(r.text().await.unwrap().contains("ExtendEditor.show"));
    }
    refusal(
        get("/edit/v9/acme").await.unwrap(),
        404,
        "no editor version `v9`",
    )
    .await;
    refusal(get("/edit/bad%20name").await.unwrap(), 400, "container").await;

    // CORS: a platform's page calls the management API with a bearer token.
    let r = env
        .http
        .request(reqwest::Method::OPTIONS, env.url("/api/webtask/acme"))
        .header("origin", "http://platform.example")
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PUT")
    );
    let r = env
        .http
        .get(env.url("/api/webtask/acme"))
        .bearer_auth(env.master())
        .header("origin", "http://platform.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["access-control-expose-headers"], "*");
    // Run URLs are the extension's business: no CORS headers added.
    env.install("acme", "w", "module.exports = cb => cb(null, 1)")
        .await;
    let r = env
        .http
        .post(env.url("/api/run/acme/w"))
        .header("origin", "http://platform.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn operators_get_health_readiness_and_prometheus_metrics() {
    let host = extend_host::Host::builder()
        .memory()
        .metrics_token("scrape-me")
        .start()
        .await
        .unwrap();
    let env = common::Env::with_host(host);
    let get = |path: &str, token: Option<&str>| {
        let mut r = env.http.get(env.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = get("/healthz", None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let r = get("/readyz", None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ready"}));

    env.install(
        "acme",
        "w",
        "module.exports = (ctx, cb) => { console.log('traced'); cb(null, 1); }",
    )
    .await;
    env.install(
        "acme",
        "bad",
        "module.exports = (ctx, cb) => cb(new Error('no'))",
    )
    .await;
    // A run with the caller's trace context puts its trace id on the run's log lines.
    let tenant = env.tenant_token("acme").await;
    let mut logs = common::LogStream::open(&env, "acme", &tenant).await;
    let r = env
        .http
        .post(env.url("/api/run/acme/w"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let record = logs.next_record().await;
    assert_eq!(
        (record["msg"].as_str(), record["trace_id"].as_str()),
        (Some("traced"), Some("4bf92f3577b34da6a3ce929d0e0e4736"))
    );
    // A malformed one is ignored.
    let r = env
        .http
        .post(env.url("/api/run/acme/w"))
        .header("traceparent", "00-nothex-01")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let record = logs.next_record().await;
    assert!(record.get("trace_id").is_none(), "{record}");
    assert_eq!(env.run("acme", "bad", json!({})).await.0, 400);

    refusal(
        get("/metrics", None).await.unwrap(),
        401,
        "Authorization: Bearer",
    )
    .await;
    refusal(
        get("/metrics", Some(&tenant)).await.unwrap(),
        403,
        "metrics token or the master token",
    )
    .await;
    refusal(
        get("/metrics", Some("guess")).await.unwrap(),
        403,
        "neither the metrics token",
    )
    .await;
    for token in ["scrape-me", env.master()] {
        let r = get("/metrics", Some(token)).await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let text = r.text().await.unwrap();
        for line in [
            "extend_host_runs_total{container=\"acme\",source=\"webtask\"} 3",
            "extend_host_run_duration_seconds_count{source=\"webtask\"} 3",
            "extend_host_runs_in_flight 0",
            "extend_host_resident_containers 1",
            "extend_host_quarantines_total 0",
            "extend_host_evictions_total 0",
            "extend_host_http_requests_total{method=\"PUT\",kind=\"management\"} 2",
            "extend_host_http_requests_total{method=\"POST\",kind=\"run\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(
            text.contains("# TYPE extend_host_heap_bytes gauge"),
            "{text}"
        );
    }
}

async fn metrics_text(env: &common::Env) -> String {
    let r = env
        .http
        .get(env.url("/metrics"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_container_left_without_webtasks_loses_its_metric_series() {
    let env = common::start().await;
    for name in ["a", "b"] {
        env.install("gone", name, "module.exports = cb => cb(null, 1)")
            .await;
        assert_eq!(env.run("gone", name, json!({})).await.0, 200);
    }
    let series = "extend_host_runs_total{container=\"gone\",source=\"webtask\"} 2";
    assert!(metrics_text(&env).await.contains(series));
    for name in ["a", "b"] {
        let r = env
            .http
            .delete(env.url(&format!("/api/webtask/gone/{name}")))
            .bearer_auth(env.master())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    common::eventually(
        std::time::Duration::from_secs(10),
        "the series is dropped",
        || async { (!metrics_text(&env).await.contains("container=\"gone\"")).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let mut limits = extend_host::Limits::default();
    limits.in_flight_per_container = 1;
    limits.writes_per_second = 0.001;
    limits.write_burst = 1;
    let env = common::start_with(limits).await;
    env.install("acme", "slow", "module.exports = (ctx, cb) => { const t = Date.now() + 300; while (Date.now() < t) {} cb(null, 1); }").await;
    let (a, b) = tokio::join!(env.run("acme", "slow", json!({})), async {
        // The first run is admitted before the second is sent.
        common::eventually(
            std::time::Duration::from_secs(5),
            "the first run in flight",
            || async { (env.host.runs_in_flight("acme") == 1).then_some(()) },
        )
        .await;
        env.run("acme", "slow", json!({})).await
    });
    assert_eq!((a.0, b.0), (200, 429));
    let text = metrics_text(&env).await;
    assert!(
        text.lines()
            .any(|l| l == "extend_host_rejected_total{reason=\"in_flight\"} 1"),
        "{text}"
    );
    // The install above used the burst of one write: the next is refused.
    let r = env
        .http
        .put(env.url("/api/webtask/acme/other"))
        .bearer_auth(env.master())
        .json(&json!({"code": "module.exports = cb => cb()"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let text = metrics_text(&env).await;
    assert!(
        text.lines()
            .any(|l| l == "extend_host_rejected_total{reason=\"writes\"} 1"),
        "{text}"
    );
}

/// A real SQLite store that stops answering when told to: the fault a
/// readiness probe exists for.
struct Unplugged {
    inner: extend_host::store::SqliteStore,
    broken: std::sync::atomic::AtomicBool,
}

mod unplugged {
    use super::Unplugged;
    use extend_host::store::{
        BoxFuture, Catalogs, Drafts, Feed, History, Recordings, Store, StoreError, StoredCatalog,
        StoredWebtask, Usage,
    };
    use std::sync::atomic::Ordering;

    impl Store for Unplugged {
        fn get<'a>(
            &'a self,
            c: &'a str,
            n: &'a str,
        ) -> BoxFuture<'a, Result<Option<StoredWebtask>, StoreError>> {
            self.inner.get(c, n)
        }
        fn put(&self, w: StoredWebtask) -> BoxFuture<'_, Result<StoredWebtask, StoreError>> {
            self.inner.put(w)
        }
        fn delete<'a>(&'a self, c: &'a str, n: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
            self.inner.delete(c, n)
        }
        fn list<'a>(
            &'a self,
            c: &'a str,
            meta: &'a [(String, String)],
            offset: u64,
            limit: u64,
        ) -> BoxFuture<'a, Result<Vec<StoredWebtask>, StoreError>> {
            self.inner.list(c, meta, offset, limit)
        }
        fn usage<'a>(&'a self, c: &'a str) -> BoxFuture<'a, Result<Usage, StoreError>> {
            self.inner.usage(c)
        }
        fn revoke<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
            self.inner.revoke(jti)
        }
        fn revoked(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
            self.inner.revoked()
        }
    }

    impl Drafts for Unplugged {}
    impl History for Unplugged {}
    impl Recordings for Unplugged {}
    impl Feed for Unplugged {}
    impl extend_host::store::Settings for Unplugged {}

    impl Catalogs for Unplugged {
        fn catalogs(&self) -> BoxFuture<'_, Result<Vec<StoredCatalog>, StoreError>> {
            if self.broken.load(Ordering::SeqCst) {
                return Box::pin(async { Err(StoreError::Database("disk I/O error".into())) });
            }
            self.inner.catalogs()
        }
    }
}

#[tokio::test]
async fn readiness_fails_naming_the_store_when_it_stops_answering() {
    let dir = std::env::temp_dir().join(format!("extend-readyz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = std::sync::Arc::new(Unplugged {
        inner: extend_host::store::SqliteStore::open(&dir.join("host.sqlite")).unwrap(),
        broken: std::sync::atomic::AtomicBool::new(false),
    });
    let host = extend_host::Host::builder()
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let env = common::Env::with_host(host);
    let r = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    store
        .broken
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let r = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("the store does not answer"),
        "{body}"
    );
    // The process still serves: health is about the process.
    assert_eq!(
        env.http
            .get(env.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    std::fs::remove_dir_all(dir).unwrap();
}
