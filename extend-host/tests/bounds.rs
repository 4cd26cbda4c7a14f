//! What one tenant may hold or hold open, counted per container: drafts,
//! management requests in progress, change streams, recorded inputs and
//! replay answers; and streams that end with their token.

#[macro_use]
mod common;

use common::{Changes, Env, LogStream};
use extend_host::Limits;
use serde_json::{Value, json};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(10);

async fn refusal(r: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(r.status(), status, "{}", r.url());
    let body: Value = r.json().await.unwrap();
    let msg = body["message"].as_str().unwrap();
    assert!(msg.contains(needle), "`{msg}` should contain `{needle}`");
}

async fn put_draft(env: &Env, name: &str, code: &str) -> reqwest::Response {
    env.http
        .put(env.url(&format!("/api/webtask/acme/{name}/draft")))
        .bearer_auth(env.master())
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

/// The end of a stream: `None` once it closed, within [`WITHIN`].
async fn ends(resp: &mut reqwest::Response) {
    tokio::time::timeout(WITHIN, async {
        while let Some(chunk) = resp.chunk().await.ok().flatten() {
            let _ = chunk;
        }
    })
    .await
    .expect("the stream ended");
}

on_both_stores! {
    #[tokio::test]
    async fn drafts_are_bounded_by_count_and_bytes_per_container() {
        let mut limits = Limits::default();
        limits.drafts_per_container = 2;
        limits.draft_code_per_container = 1000;
        let env = start_with(limits).await;
        assert_eq!(put_draft(&env, "a", "module.exports = 1").await.status(), 200);
        assert_eq!(put_draft(&env, "b", "module.exports = 2").await.status(), 200);
        refusal(put_draft(&env, "c", "module.exports = 3").await, 403, "already has 2 drafts, its limit (drafts_per_container)").await;
        // Replacing a draft is not a new one; bytes count what replaces.
        assert_eq!(put_draft(&env, "a", &"x".repeat(900)).await.status(), 200);
        refusal(put_draft(&env, "b", &"x".repeat(200)).await, 403, "its limit (draft_code_per_container) is 1000 bytes").await;
        // Another container has its own.
        let r = env.http.put(env.url("/api/webtask/globex/c/draft")).bearer_auth(env.master())
            .json(&json!({ "code": "module.exports = 1" })).send().await.unwrap();
        assert_eq!(r.status(), 200);
        // A deleted draft gives its place back.
        let r = env.http.delete(env.url("/api/webtask/acme/a/draft")).bearer_auth(env.master()).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(put_draft(&env, "c", "module.exports = 3").await.status(), 200);
    }

    #[tokio::test]
    async fn version_histories_are_bounded_in_bytes_per_container() {
        let mut limits = Limits::default();
        limits.history_per_container = 1000;
        let env = start_with(limits).await;
        let code = |i: usize| format!("module.exports = cb => cb(null, {i}); // {}", "x".repeat(260));
        for i in 0..5 {
            env.install("acme", "a", &code(i)).await;
        }
        let versions = |name: &'static str| {
            let env = &env;
            async move {
                env.get_json(&format!("/api/webtask/acme/{name}/versions")).await
                    .as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect::<Vec<_>>()
            }
        };
        // About 300 bytes each: the newest three fit in 1,000.
        assert_eq!(versions("a").await, [5, 4, 3]);
        // Another webtask's writes push older versions out, never a live
        // one: the live versions count first.
        env.install("acme", "b", &code(9)).await;
        assert_eq!((versions("a").await, versions("b").await), (vec![5, 4], vec![1]));
        env.install("acme", "b", &code(10)).await;
        assert_eq!((versions("a").await, versions("b").await), (vec![5, 4], vec![2]));
        assert_eq!(env.run("acme", "a", json!({})).await.2, json!(4));
        // Another container keeps its own.
        for i in 0..3 {
            env.install("globex", "a", &code(i)).await;
        }
        assert_eq!(env.get_json("/api/webtask/globex/a/versions").await.as_array().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn change_streams_are_capped_per_container_and_a_position_past_the_log_is_reset() {
        let mut limits = Limits::default();
        limits.change_subscribers_per_container = 2;
        let env = start_with(limits).await;
        let first = Changes::open(&env, "?container=acme", None).await;
        let _second = Changes::open(&env, "?container=acme", None).await;
        let r = env.http.get(env.url("/api/changes?container=acme")).bearer_auth(env.master()).send().await.unwrap();
        refusal(r, 429, "has 2 open change streams, its limit (change_subscribers_per_container)").await;
        // Another container, and every container, are counted apart.
        let _globex = Changes::open(&env, "?container=globex", None).await;
        let _all = Changes::open(&env, "", None).await;
        // A closed stream gives its place back.
        drop(first);
        common::eventually(WITHIN, "the closed stream's place is free", || async {
            let r = env.http.get(env.url("/api/changes?container=acme")).bearer_auth(env.master()).send().await.unwrap();
            (r.status() == 200).then_some(())
        })
        .await;

        // An id no change has had yet: the client is told to start over,
        // and then gets the changes that follow (they were skipped before).
        env.install("globex", "w", "module.exports = cb => cb(null, 1)").await;
        let mut ahead = Changes::open(&env, "?container=globex", Some(1_000_000)).await;
        assert_eq!(ahead.next().await.event, "reset");
        env.install("globex", "w2", "module.exports = cb => cb(null, 1)").await;
        let next = ahead.next().await;
        assert_eq!((next.event.as_str(), next.data["name"].as_str()), ("webtask", Some("w2")));
    }

    #[tokio::test]
    async fn a_reconnecting_client_catches_up_a_page_at_a_time_in_order() {
        let mut limits = Limits::default();
        limits.write_burst = 1000;
        let env = start_with(limits).await;
        let mut ids = Vec::new();
        let mut all = Changes::open(&env, "?container=acme", None).await;
        for i in 0..250 {
            env.install("acme", &format!("w{i}"), "module.exports = cb => cb(null, 1)").await;
            ids.push(all.next().await.id.unwrap());
        }
        let mut resumed = Changes::open(&env, "?container=acme", Some(ids[0])).await;
        for want in &ids[1..] {
            assert_eq!(resumed.next().await.id, Some(*want));
        }
        env.install("acme", "live", "module.exports = cb => cb(null, 1)").await;
        assert_eq!(resumed.next().await.data["name"], "live");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_requests_in_progress_are_capped_per_container() {
    let mut limits = Limits::default();
    limits.management_in_flight_per_container = 1;
    let env = common::start_with(limits).await;
    // A draft run that takes a second and a half holds acme's one place;
    // it says on the log stream when it runs, which means its request is
    // in progress (a signal, not a sleep).
    let tenant = env.tenant_token("acme").await;
    let mut log = LogStream::open(&env, "acme", &tenant).await;
    let r = env
        .http
        .put(env.url("/api/webtask/acme/slow/draft"))
        .bearer_auth(env.master())
        .json(&json!({ "code": "module.exports = (ctx, cb) => { console.log('running'); const t = Date.now() + 1500; while (Date.now() < t) {} cb(null, 'done'); }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut runs = tokio::task::JoinSet::new();
    {
        let (http, url, token) = (
            env.http.clone(),
            env.url("/api/webtask/acme/slow/draft/run"),
            env.master().to_owned(),
        );
        runs.spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    assert_eq!(log.next_record().await["msg"], "running");
    let refused = env
        .http
        .get(env.url("/api/webtask/acme"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    refusal(
        refused,
        429,
        "has 1 management requests in progress, its limit (management_in_flight_per_container)",
    )
    .await;
    // Another container is not held up.
    let r = env
        .http
        .get(env.url("/api/webtask/globex"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for status in runs.join_all().await {
        assert_eq!(status, 200);
    }
    let r = env
        .http
        .get(env.url("/api/webtask/acme"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the places were given back");
    // Log streams are not management requests in progress: they have limits of their own.
    let _a = LogStream::open(&env, "acme", &tenant).await;
    let _b = LogStream::open(&env, "acme", &tenant).await;
    let _c = LogStream::open(&env, "acme", &tenant).await;
}

#[tokio::test]
async fn log_and_change_streams_end_when_their_token_is_revoked_or_expires() {
    let env = common::start().await;
    let issue = |body: Value| {
        let env = &env;
        async move {
            let r = env
                .http
                .post(env.url("/api/tokens/issue"))
                .bearer_auth(env.master())
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let open = |path: String, token: String| {
        let env = &env;
        async move {
            let mut r = env
                .http
                .get(env.url(&path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let first = r.chunk().await.unwrap().unwrap();
            assert!(first.starts_with(b": connected"), "{path}");
            r
        }
    };
    // Revoked: both streams of the token close.
    let tenant = issue(json!({ "ten": "acme" })).await;
    let mut logs = open("/api/logs/tenant/acme".into(), tenant.clone()).await;
    let mut changes = open("/api/changes?container=acme".into(), tenant.clone()).await;
    let r = env
        .http
        .post(env.url("/api/tokens/revoke"))
        .bearer_auth(env.master())
        .json(&json!({ "token": tenant }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    ends(&mut logs).await;
    ends(&mut changes).await;
    // Expired: a token good for two more seconds.
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let brief = issue(json!({ "ten": "acme", "exp": exp })).await;
    let started = std::time::Instant::now();
    let mut logs = open("/api/logs/tenant/acme".into(), brief.clone()).await;
    let mut changes = open("/api/changes?container=acme".into(), brief).await;
    ends(&mut logs).await;
    ends(&mut changes).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before it expired"
    );
}

#[tokio::test]
async fn large_inputs_are_recorded_as_a_note_and_replays_cut_large_answers() {
    let env = common::start().await;
    let catalog = json!({"points": [{"name": "p", "mode": "sync", "record_inputs": true, "payload_schema": {}}]});
    let r = env
        .http
        .put(env.url("/api/catalog"))
        .bearer_auth(env.master())
        .json(&catalog)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo = "module.exports = (ctx, cb) => cb(null, ctx.body)";
    env.put(
        "acme",
        "w",
        echo,
        json!({}),
        json!({"auth0-extension-type": "p"}),
    )
    .await;
    let big = json!({ "text": "x".repeat(200_000) });
    assert_eq!(env.run_as_platform("acme", "w", big.clone()).await.0, 200);
    let inputs = common::eventually(WITHIN, "the input is recorded", || async {
        let got = env.get_json("/api/webtask/acme/w/inputs").await;
        (got["inputs"].as_array().unwrap().len() == 1).then_some(got)
    })
    .await;
    let note = &inputs["inputs"][0]["request"];
    assert_eq!(note["body"], Value::Null);
    assert!(
        note["not_recorded"]
            .as_str()
            .unwrap()
            .contains("inputs over 65536 bytes are not recorded"),
        "{note}"
    );
    // A replay shows at most 64 KiB of each answer.
    assert_eq!(
        env.run_as_platform("acme", "w", json!({"small": true}))
            .await
            .0,
        200
    );
    common::eventually(WITHIN, "the small input is recorded", || async {
        let got = env.get_json("/api/webtask/acme/w/inputs").await;
        (got["inputs"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    let r = env
        .http
        .put(env.url("/api/webtask/acme/w/draft"))
        .bearer_auth(env.master())
        .json(&json!({ "code": "module.exports = (ctx, cb) => cb(null, 'y'.repeat(300000))", "meta": {"auth0-extension-type": "p"} }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = env
        .http
        .post(env.url("/api/webtask/acme/w/draft/replay"))
        .bearer_auth(env.master())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    let draft = &report["inputs"][0]["draft"];
    assert_eq!(draft["body"].as_str().unwrap().len(), 65536);
    assert!(
        draft["truncated"]
            .as_str()
            .unwrap()
            .contains("replay shows the first 65536"),
        "{draft}"
    );
}
