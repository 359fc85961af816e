#![cfg(not(target_family = "wasm"))]
//! What an app needs from its own handlers (issue "a real app can adopt it"): the store back from
//! [`Sessions`], signing a user out everywhere, the purge task, cookie options, a router-wide guard
//! with a redirect for pages, and a malformed cookie cleared.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use pylon_sessions::axum::{CurrentSession, SameSite, SessionConfig, Sessions};
use pylon_sessions::{
    AsyncSessionStore, Blocking, ErrorKind, MemoryBackend, NewSession, Policy, SessionStatus,
    SqliteBackend,
};
use tower::ServiceExt;

type Store = AsyncSessionStore<Blocking<MemoryBackend>>;

fn store() -> Arc<Store> {
    Arc::new(AsyncSessionStore::new(Blocking::new(MemoryBackend::new())))
}

fn http() -> SessionConfig {
    SessionConfig {
        scheme: "http".into(),
        ..SessionConfig::default()
    }
}

#[tokio::test]
async fn sessions_hands_back_its_store_and_signs_a_user_out_everywhere() {
    let shared = store();
    let sessions = Sessions::new(Arc::clone(&shared));
    let back = sessions
        .store::<Blocking<MemoryBackend>>()
        .expect("the store back");
    assert!(Arc::ptr_eq(&back, &shared));
    assert!(sessions.store::<Blocking<SqliteBackend>>().is_none());

    let mut ids = Vec::new();
    for device in ["phone", "laptop", "tablet"] {
        let mut new = NewSession::new("alice");
        new.device = Some(device.into());
        ids.push(shared.create(new).await.unwrap().1.id);
    }
    let (bob, _) = shared.create(NewSession::new("bob")).await.unwrap();
    assert_eq!(
        sessions.sign_out_everywhere("alice", None).await.unwrap(),
        3
    );
    for id in &ids {
        assert!(matches!(
            sessions.status(id).await.unwrap(),
            SessionStatus::Revoked { .. }
        ));
    }
    assert!(shared.touch(&bob).await.unwrap().is_some(), "bob stays in");
}

#[tokio::test]
async fn the_purge_task_purges_on_its_interval_and_stops_when_dropped() {
    let now = Arc::new(AtomicI64::new(1_000_000));
    let clock = Arc::clone(&now);
    let store = Arc::new(
        AsyncSessionStore::new(Blocking::new(MemoryBackend::new()))
            .with_policy(Policy {
                idle_timeout: 60,
                absolute_timeout: 3600,
            })
            .with_clock(move || clock.load(Ordering::SeqCst)),
    );
    for i in 0..5 {
        store
            .create(NewSession::new(format!("u{i}")))
            .await
            .unwrap();
    }
    let task = store.purge_every(Duration::from_millis(20));
    // Nothing expired yet: runs happen, nothing goes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = task.stats();
    assert!(before.runs >= 1, "{before:?}");
    assert_eq!(before.purged, 0);
    assert_eq!(store.load_all().await.unwrap().len(), 5);

    now.fetch_add(120, Ordering::SeqCst); // past the idle timeout
    let mut waited = Duration::ZERO;
    while task.stats().purged < 5 && waited < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert_eq!(task.stats().purged, 5, "{:?}", task.stats());
    assert!(store.load_all().await.unwrap().is_empty());

    let stats = task.stop();
    assert_eq!(stats.failures, 0);
    store.create(NewSession::new("late")).await.unwrap();
    now.fetch_add(120, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        store.load_all().await.unwrap().len(),
        1,
        "a stopped task purges nothing"
    );
}

#[tokio::test]
async fn the_purge_task_counts_failures_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Arc::new(AsyncSessionStore::new(Blocking::new(
        SqliteBackend::open(&path).unwrap(),
    )));
    // The table disappears under the store (another process dropped it): every purge fails.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("DROP TABLE _pylon_sessions").unwrap();
    let task = store.purge_every(Duration::from_millis(20));
    let mut waited = Duration::ZERO;
    while task.stats().failures < 3 && waited < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    let stats = task.stop();
    assert!(stats.failures >= 3, "{stats:?}");
    let (kind, message) = stats.last_failure.expect("the failure is kept");
    println!("purge failure kept: {kind:?}: {message}");
    assert_ne!(kind, ErrorKind::InvalidInput);
}

async fn sign_in_cookie(sessions: &Sessions, browser_session: bool) -> String {
    let signed = sessions
        .sign_in(&Default::default(), NewSession::new("alice"))
        .await
        .unwrap();
    let signed = if browser_session {
        signed.until_browser_closes()
    } else {
        signed
    };
    let res = axum::response::IntoResponse::into_response(signed);
    res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn cookie_options_domain_same_site_and_browser_session_cookies() {
    let default = Sessions::new(store()).with_config(http()).unwrap();
    let cookie = sign_in_cookie(&default, false).await;
    assert!(cookie.starts_with("__Host-pylon_session="), "{cookie}");
    assert!(
        cookie.contains("; SameSite=Lax") && cookie.contains("; Max-Age="),
        "{cookie}"
    );
    let remember_off = sign_in_cookie(&default, true).await;
    assert!(!remember_off.contains("Max-Age"), "{remember_off}");

    let shared = Sessions::new(store())
        .with_config(SessionConfig {
            cookie_name: "__Secure-app_session".into(),
            domain: Some("example.com".into()),
            same_site: SameSite::Strict,
            persistent: false,
            ..http()
        })
        .unwrap();
    let cookie = sign_in_cookie(&shared, false).await;
    assert!(cookie.starts_with("__Secure-app_session="), "{cookie}");
    for part in [
        "; Domain=example.com",
        "; SameSite=Strict",
        "; Secure",
        "; HttpOnly",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Max-Age"), "{cookie}");

    // What browsers would refuse is refused here, naming the field.
    for (config, field) in [
        (
            SessionConfig {
                domain: Some("example.com".into()),
                ..http()
            },
            "domain",
        ),
        (
            SessionConfig {
                cookie_name: "s".into(),
                domain: Some("exa;mple.com".into()),
                ..http()
            },
            "domain",
        ),
        (
            SessionConfig {
                cookie_name: "s".into(),
                secure: false,
                same_site: SameSite::None,
                ..http()
            },
            "same_site",
        ),
        (
            SessionConfig {
                secure: false,
                ..http()
            },
            "secure",
        ),
        (
            SessionConfig {
                cookie_name: "a b".into(),
                ..http()
            },
            "cookie_name",
        ),
    ] {
        let err = Sessions::new(store()).with_config(config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

fn guarded(sessions: &Sessions, redirect: bool) -> Router {
    async fn private(current: CurrentSession) -> String {
        current.session.user_id
    }
    let guard = if redirect {
        sessions.guard_or_redirect("/login").unwrap()
    } else {
        sessions.guard()
    };
    Router::new()
        .route("/private", get(private))
        .route("/also", get(|| async { "also private" }))
        .route_layer(guard)
        .with_state(sessions.clone())
}

fn get_req(headers: &[(&str, &str)]) -> Request<Body> {
    let mut req = Request::builder().uri("/also");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_guard_covers_a_whole_router_and_redirects_pages() {
    let shared = store();
    let sessions = Sessions::new(Arc::clone(&shared))
        .with_config(http())
        .unwrap();
    let (token, _) = shared.create(NewSession::new("alice")).await.unwrap();
    let bearer = format!("Bearer {}", token.expose());

    // A route with no extractor of its own is covered too.
    let res = guarded(&sessions, false)
        .oneshot(get_req(&[]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = guarded(&sessions, false)
        .oneshot(get_req(&[("authorization", &bearer)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // The handler's CurrentSession is the one the guard validated.
    let req = Request::builder()
        .uri("/private")
        .header("authorization", &bearer)
        .body(Body::empty())
        .unwrap();
    let res = guarded(&sessions, false).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"alice");

    // Pages are redirected; API calls still get 401 JSON.
    let res = guarded(&sessions, true)
        .oneshot(get_req(&[("accept", "text/html,application/xhtml+xml")]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/login");
    let res = guarded(&sessions, true)
        .oneshot(get_req(&[("accept", "application/json")]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A revoked session is refused by the guard at once.
    shared.remove(&token).await.unwrap();
    let res = guarded(&sessions, false)
        .oneshot(get_req(&[("authorization", &bearer)]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(sessions.guard_or_redirect("/log\nin").is_err());
}

#[tokio::test]
async fn a_malformed_session_cookie_is_cleared() {
    let sessions = Sessions::new(store()).with_config(http()).unwrap();
    for cookie in ["__Host-pylon_session=%%%", "__Host-pylon_session=short"] {
        let res = guarded(&sessions, false)
            .oneshot(get_req(&[("cookie", cookie)]))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{cookie}");
        let set = res
            .headers()
            .get(header::SET_COOKIE)
            .unwrap_or_else(|| panic!("{cookie}: not cleared"))
            .to_str()
            .unwrap();
        assert!(set.contains("Max-Age=0"), "{set}");
    }
}

/// Attributes in an app's own handlers: set at sign-in (a `NewSession` that carries them), read from
/// the extractor's session, replaced by a handler through `Sessions::set_attributes`, read again on
/// the next request; over the limits is a 400 that stores nothing; a session gone is a 401.
#[tokio::test]
async fn sign_in_with_attributes_read_and_update_them_in_handlers() {
    use axum::extract::State;
    use axum::routing::post;
    use pylon_sessions::axum::ApiError;
    use pylon_sessions::serde_json::{json, Value};
    use pylon_sessions::Attributes;

    async fn read(current: CurrentSession) -> axum::Json<Value> {
        axum::Json(Value::from(current.session.attributes))
    }
    async fn second_factor(
        State(sessions): State<Sessions>,
        current: CurrentSession,
    ) -> Result<axum::Json<Value>, ApiError> {
        let mut attributes = current.session.attributes.clone();
        attributes.insert("mfa", true);
        let session = sessions.set_attributes(&current, attributes).await?;
        Ok(axum::Json(Value::from(session.attributes)))
    }
    async fn too_much(
        State(sessions): State<Sessions>,
        current: CurrentSession,
    ) -> Result<(), ApiError> {
        let many: Attributes = (0..=pylon_sessions::limits::ATTRIBUTES_MAX)
            .map(|i| (format!("k{i}"), i))
            .collect();
        sessions.set_attributes(&current, many).await.map(|_| ())
    }

    let shared = store();
    let sessions = Sessions::new(Arc::clone(&shared))
        .with_config(http())
        .unwrap();
    let app = Router::new()
        .route("/attributes", get(read))
        .route("/mfa", post(second_factor))
        .route("/too-much", post(too_much))
        .with_state(sessions.clone());

    let signed = sessions
        .sign_in(
            &Default::default(),
            NewSession::new("alice")
                .with_attribute("mfa", false)
                .with_attribute("ip", "203.0.113.7"),
        )
        .await
        .unwrap();
    assert_eq!(signed.session.attributes.get("mfa"), Some(&json!(false)));
    let bearer = format!("Bearer {}", signed.token.expose());
    let call = |method: &str, uri: &str| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap()
    };
    let body = |res: axum::response::Response| async move {
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        pylon_sessions::serde_json::from_slice::<Value>(&bytes).unwrap()
    };

    let res = app
        .clone()
        .oneshot(call("GET", "/attributes"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, json!({"ip": "203.0.113.7", "mfa": false}));

    let res = app.clone().oneshot(call("POST", "/mfa")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, json!({"ip": "203.0.113.7", "mfa": true}));

    let res = app
        .clone()
        .oneshot(call("GET", "/attributes"))
        .await
        .unwrap();
    assert_eq!(body(res).await, json!({"ip": "203.0.113.7", "mfa": true}));

    let res = app
        .clone()
        .oneshot(call("POST", "/too-much"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = app
        .clone()
        .oneshot(call("GET", "/attributes"))
        .await
        .unwrap();
    assert_eq!(
        body(res).await,
        json!({"ip": "203.0.113.7", "mfa": true}),
        "nothing stored"
    );

    // Through the store too, and a session gone meanwhile is a 401 from the helper.
    let current = sessions
        .current(&axum::http::Method::GET, &{
            let mut h = axum::http::HeaderMap::new();
            h.insert("authorization", bearer.parse().unwrap());
            h
        })
        .await
        .unwrap();
    assert_eq!(
        shared.get(&signed.token).await.unwrap().unwrap().attributes,
        current.session.attributes
    );
    shared.remove(&signed.token).await.unwrap();
    let err = sessions
        .set_attributes(&current, Attributes::new())
        .await
        .unwrap_err();
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);
}
