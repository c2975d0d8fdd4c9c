//! OpenID Connect single sign-on: authorization code flow with PKCE (S256).
//!
//! Why hand-written over `openidconnect`: the flow is four requests, and
//! every piece it needs is already in the build — jsonwebtoken (RS256 and
//! JWK sets), sha2, rand and the small client in [`crate::httpc`] (which
//! never follows redirects). What it checks:
//!
//! - discovery (`<issuer>/.well-known/openid-configuration`) must name the
//!   configured issuer; it and the JWK set are cached (an unknown `kid`
//!   refetches the set, at most every [`JWKS_MIN_REFRESH`]);
//! - `state` is random, kept in the database (as its SHA-256, with the PKCE
//!   verifier and the nonce, table `auth_oidc_logins`) so that any process
//!   on the database can finish the login, expires after
//!   `oidc.state_ttl_secs` and is single-use across processes; at most
//!   `oidc.max_pending` logins are in progress (beyond it new ones are
//!   refused, 503, so a flood of unauthenticated logins cannot fill the
//!   table);
//! - the ID token must be RS256 (pinned; `none` and HMAC refused), signed by
//!   a key of the provider's JWK set, with our `client_id` as audience, the
//!   configured issuer, a live `exp`, and the nonce of this login;
//! - the group claim must map to a role, else 403;
//! - a user that exists with a password is not taken over by SSO (409).
//!
//! SSO users are stored with a password hash that no password matches
//! (`sso:oidc:<issuer>`), so they cannot log in with a password.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use killkrill_core::event::Tenant;
use killkrill_store::auth::{AuthStore, OidcLogin, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::limiter::AddressLimiter;
use crate::httpc::{HttpClient, check_url};

/// The password hash prefix of SSO users (matches no password).
pub const SSO_HASH_PREFIX: &str = "sso:oidc:";
/// Discovery documents are refetched after this long.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the JWK set at most this often.
pub const JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);
/// Clock skew tolerated on the ID token's `exp`, seconds.
pub const LEEWAY_SECS: u64 = 60;

/// `[oidc]`: the identity provider.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// Turn SSO on (it also needs the `sso_oidc` license feature in release
    /// mode).
    pub enabled: bool,
    /// The issuer URL (`https://`; `http://` only on loopback).
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// Where the provider sends the browser back: this server's
    /// `/api/v1/auth/oidc/callback` as the browser reaches it.
    pub redirect_uri: String,
    /// Scopes asked for; must include `openid`.
    pub scopes: Vec<String>,
    /// The ID token claim holding the user's groups.
    pub group_claim: String,
    /// Group → role (`admin`, `maintainer`, `viewer`). A user in several
    /// mapped groups gets the highest role; in none, no login (403).
    pub role_mapping: BTreeMap<String, String>,
    /// The tenant of new SSO users; the system tenant (`tenant`) when unset.
    pub default_tenant: Option<String>,
    /// When set, the callback redirects (302) here with the tokens in the
    /// URL fragment (`#access_token=...&refresh_token=...`) instead of
    /// answering JSON.
    pub frontend_redirect: Option<String>,
    /// Timeout of one call to the provider, seconds.
    pub timeout_secs: u64,
    /// How long a login may take between redirect and callback, seconds.
    pub state_ttl_secs: u64,
    /// Logins in progress kept at most, across every process on the
    /// database; beyond it new logins are refused (503).
    pub max_pending: usize,
    /// Logins one client address (IPv6: /64) may begin per
    /// `state_ttl_secs`; beyond it 429 with `Retry-After`. Keeps one client
    /// from filling `max_pending` and locking everyone out of SSO (counted
    /// in the limiter per network when its table is full, as for password
    /// logins).
    pub max_pending_per_address: u32,
    /// `OIDC_CLIENT_SECRET` (environment; sent with HTTP Basic to the token
    /// endpoint). Without it the client is public (PKCE only).
    #[serde(skip)]
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // By hand, to keep the client secret out of logs; every field is
        // named, so a new one cannot be forgotten.
        let OidcConfig {
            enabled,
            issuer,
            client_id,
            redirect_uri,
            scopes,
            group_claim,
            role_mapping,
            default_tenant,
            frontend_redirect,
            timeout_secs,
            state_ttl_secs,
            max_pending,
            max_pending_per_address,
            client_secret,
        } = self;
        f.debug_struct("OidcConfig")
            .field("enabled", enabled)
            .field("issuer", issuer)
            .field("client_id", client_id)
            .field("redirect_uri", redirect_uri)
            .field("scopes", scopes)
            .field("group_claim", group_claim)
            .field("role_mapping", role_mapping)
            .field("default_tenant", default_tenant)
            .field("frontend_redirect", frontend_redirect)
            .field("timeout_secs", timeout_secs)
            .field("state_ttl_secs", state_ttl_secs)
            .field("max_pending", max_pending)
            .field("max_pending_per_address", max_pending_per_address)
            .field(
                "client_secret",
                &killkrill_core::secret::Redacted(client_secret),
            )
            .finish()
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            enabled: false,
            issuer: String::new(),
            client_id: String::new(),
            redirect_uri: String::new(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            group_claim: "groups".into(),
            role_mapping: BTreeMap::new(),
            default_tenant: None,
            frontend_redirect: None,
            timeout_secs: 10,
            state_ttl_secs: 600,
            max_pending: 10_000,
            max_pending_per_address: 30,
            client_secret: None,
        }
    }
}

impl OidcConfig {
    /// Reads `OIDC_CLIENT_SECRET`.
    pub fn read_env(&mut self, env: &[(String, String)]) {
        if let Some((_, v)) = env.iter().find(|(k, _)| k == "OIDC_CLIENT_SECRET")
            && !v.is_empty()
        {
            self.client_secret = Some(v.clone());
        }
    }

    /// Checks the settings when enabled.
    ///
    /// # Errors
    /// `(key, problem)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.enabled {
            return Ok(());
        }
        check_url(&self.issuer).map_err(|e| ("oidc.issuer", e))?;
        if self.client_id.is_empty() {
            return Err(("oidc.client_id", "must be set when oidc.enabled".into()));
        }
        let redirect: axum::http::Uri = self
            .redirect_uri
            .parse()
            .map_err(|_| ("oidc.redirect_uri", "not a URL".to_owned()))?;
        if !matches!(redirect.scheme_str(), Some("http" | "https")) || redirect.host().is_none() {
            return Err((
                "oidc.redirect_uri",
                "must be an absolute http(s) URL ending in /api/v1/auth/oidc/callback".into(),
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(("oidc.scopes", "must include \"openid\"".into()));
        }
        if self.group_claim.is_empty() {
            return Err(("oidc.group_claim", "must not be empty".into()));
        }
        if self.role_mapping.is_empty() {
            return Err((
                "oidc.role_mapping",
                "map at least one group to a role (admin, maintainer or viewer)".into(),
            ));
        }
        for (g, r) in &self.role_mapping {
            r.parse::<Role>().map_err(|_| {
                (
                    "oidc.role_mapping",
                    format!("group {g:?}: {r:?} is not admin, maintainer or viewer"),
                )
            })?;
        }
        if let Some(t) = &self.default_tenant
            && Tenant::new(t).is_err()
        {
            return Err(("oidc.default_tenant", format!("invalid tenant name {t:?}")));
        }
        if let Some(f) = &self.frontend_redirect {
            let u: axum::http::Uri = f
                .parse()
                .map_err(|_| ("oidc.frontend_redirect", "not a URL".to_owned()))?;
            if !matches!(u.scheme_str(), Some("http" | "https")) || u.host().is_none() {
                return Err((
                    "oidc.frontend_redirect",
                    "must be an absolute http(s) URL".into(),
                ));
            }
        }
        if self.timeout_secs == 0 || self.state_ttl_secs == 0 || self.max_pending == 0 {
            return Err((
                "oidc.timeout_secs",
                "timeout_secs, state_ttl_secs and max_pending must be greater than 0".into(),
            ));
        }
        if self.max_pending_per_address == 0 {
            return Err((
                "oidc.max_pending_per_address",
                "must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Unknown, expired or reused `state` (400).
    #[error("unknown, expired or already used state")]
    BadState,
    /// Bad callback parameters (400).
    #[error("{0}")]
    BadRequest(String),
    /// The provider refused or failed (502); text for the client.
    #[error("identity provider: {0}")]
    Provider(String),
    /// The ID token did not verify (401); text for the log.
    #[error("ID token rejected: {0}")]
    Token(String),
    /// No mapped group (403).
    #[error("none of the user's groups is mapped to a role")]
    NoRole,
    /// `oidc.max_pending` logins are in progress (503).
    #[error("too many logins in progress")]
    Busy,
    /// This client address began `oidc.max_pending_per_address` logins
    /// within `oidc.state_ttl_secs` (429).
    #[error("too many logins begun from this address")]
    TooManyFromAddress {
        /// Seconds until it may begin another.
        retry_after: u64,
    },
    /// The database failed (503); text for the log.
    #[error("database: {0}")]
    Store(String),
}

/// Counter of logins refused because `oidc.max_pending` were in progress.
pub const PENDING_REFUSED: &str = "killkrill_auth_sso_pending_refused_total";
/// Counter of logins refused because their address began
/// `oidc.max_pending_per_address` within `oidc.state_ttl_secs`.
pub const ADDRESS_REFUSED: &str = "killkrill_auth_sso_address_refused_total";

#[derive(Debug, Clone, Deserialize)]
struct Provider {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A verified SSO identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `email` claim.
    pub email: String,
    /// `sub` claim.
    pub subject: String,
    /// The groups that mapped.
    pub groups: Vec<String>,
    /// The role they map to.
    pub role: Role,
}

/// The SSO client of one process (logins in progress live in the database).
pub struct Oidc {
    cfg: OidcConfig,
    client: HttpClient,
    tenant: Tenant,
    provider: tokio::sync::Mutex<Option<(Provider, Instant)>>,
    jwks: tokio::sync::Mutex<Option<(JwkSet, Instant)>>,
    store: AuthStore,
    /// Logins begun per client address, per `state_ttl_secs`.
    begun: AddressLimiter,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

fn random_b64() -> String {
    B64.encode(rand::random::<[u8; 32]>())
}

/// `BASE64URL(SHA256(verifier))` (RFC 7636 S256).
pub fn challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    /// Builds the client (no call is made until the first login).
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn new(cfg: &OidcConfig, system_tenant: &Tenant, store: AuthStore) -> Result<Self, String> {
        cfg.validate().map_err(|(k, p)| format!("{k}: {p}"))?;
        let tenant = match &cfg.default_tenant {
            Some(t) => Tenant::new(t).map_err(|_| format!("oidc.default_tenant: {t:?}"))?,
            None => system_tenant.clone(),
        };
        Ok(Oidc {
            cfg: cfg.clone(),
            client: HttpClient::new(Duration::from_secs(cfg.timeout_secs))?,
            tenant,
            provider: tokio::sync::Mutex::new(None),
            jwks: tokio::sync::Mutex::new(None),
            store,
            begun: AddressLimiter::new(
                cfg.max_pending_per_address,
                Duration::from_secs(cfg.state_ttl_secs),
            ),
        })
    }

    /// The settings.
    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    /// The tenant of new SSO users.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    async fn provider(&self) -> Result<Provider, OidcError> {
        let mut p = self.provider.lock().await;
        if let Some((prov, at)) = p.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(prov.clone());
        }
        let issuer = self.cfg.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let r = self
            .client
            .get(&url)
            .await
            .map_err(|e| OidcError::Provider(format!("discovery: {e}")))?;
        if !r.ok() {
            return Err(OidcError::Provider(format!(
                "discovery answered {}",
                r.status
            )));
        }
        let prov: Provider = r
            .json()
            .map_err(|e| OidcError::Provider(format!("discovery: {e}")))?;
        if prov.issuer.trim_end_matches('/') != issuer {
            return Err(OidcError::Provider(format!(
                "discovery names issuer {:?}, not the configured {:?}",
                prov.issuer, self.cfg.issuer
            )));
        }
        for (what, u) in [
            ("authorization_endpoint", &prov.authorization_endpoint),
            ("token_endpoint", &prov.token_endpoint),
            ("jwks_uri", &prov.jwks_uri),
        ] {
            check_url(u).map_err(|e| OidcError::Provider(format!("discovery {what}: {e}")))?;
        }
        *p = Some((prov.clone(), Instant::now()));
        Ok(prov)
    }

    async fn key_for(&self, jwks_uri: &str, kid: Option<&str>) -> Result<DecodingKey, OidcError> {
        let mut cache = self.jwks.lock().await;
        for attempt in 0..2 {
            let stale = cache
                .as_ref()
                .is_none_or(|(_, at)| at.elapsed() >= DISCOVERY_TTL);
            let may_refresh = cache
                .as_ref()
                .is_none_or(|(_, at)| at.elapsed() >= JWKS_MIN_REFRESH);
            if stale || (attempt == 1 && may_refresh) {
                let r = self
                    .client
                    .get(jwks_uri)
                    .await
                    .map_err(|e| OidcError::Provider(format!("JWK set: {e}")))?;
                if !r.ok() {
                    return Err(OidcError::Provider(format!(
                        "JWK set answered {}",
                        r.status
                    )));
                }
                let set: JwkSet = r
                    .json()
                    .map_err(|e| OidcError::Provider(format!("JWK set: {e}")))?;
                *cache = Some((set, Instant::now()));
            }
            let Some((set, _)) = cache.as_ref() else {
                continue;
            };
            let jwk = match kid {
                Some(k) => set.find(k),
                // Without a kid, only an unambiguous set will do.
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            };
            if let Some(jwk) = jwk {
                return DecodingKey::from_jwk(jwk)
                    .map_err(|e| OidcError::Token(format!("unusable JWK: {e}")));
            }
        }
        Err(OidcError::Token(format!(
            "no key {kid:?} in the provider's JWK set"
        )))
    }

    /// Starts a login: the provider's authorization URL with a fresh state,
    /// nonce and PKCE challenge (stored in the database until the callback).
    ///
    /// # Errors
    /// [`OidcError::Provider`] when discovery fails,
    /// [`OidcError::TooManyFromAddress`] when `from` began
    /// `oidc.max_pending_per_address` logins within `oidc.state_ttl_secs`
    /// (counted in [`ADDRESS_REFUSED`]), [`OidcError::Busy`] when
    /// `oidc.max_pending` logins are in progress (counted in
    /// [`PENDING_REFUSED`]), [`OidcError::Store`].
    pub async fn begin(&self, from: Option<IpAddr>) -> Result<String, OidcError> {
        if let Some(a) = from {
            let now = Instant::now();
            if let Some(b) = self.begun.blocked(a, now) {
                metrics::counter!(ADDRESS_REFUSED).increment(1);
                return Err(OidcError::TooManyFromAddress {
                    retry_after: b.retry_after,
                });
            }
            // Counted before anything is stored: a begin that fails later
            // still used the slot, as a request that filled the table would.
            self.begun.failed(a, now);
        }
        let prov = self.provider().await?;
        let state = random_b64();
        let nonce = random_b64();
        let verifier = random_b64();
        let now = crate::auth::now_nanos();
        let ttl = i64::try_from(self.cfg.state_ttl_secs)
            .unwrap_or(i64::MAX / 1_000_000_000)
            .saturating_mul(1_000_000_000);
        let login = OidcLogin {
            verifier: verifier.clone(),
            nonce: nonce.clone(),
            expires_at: now.saturating_add(ttl),
        };
        let cap = u64::try_from(self.cfg.max_pending).unwrap_or(u64::MAX);
        let stored = self
            .store
            .insert_oidc_login(&crate::auth::keys::digest(&state), &login, now, cap)
            .await
            .map_err(|e| OidcError::Store(e.to_string()))?;
        if !stored {
            metrics::counter!(PENDING_REFUSED).increment(1);
            return Err(OidcError::Busy);
        }
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.cfg.client_id)
            .append_pair("redirect_uri", &self.cfg.redirect_uri)
            .append_pair("scope", &self.cfg.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge(&verifier))
            .append_pair("code_challenge_method", "S256")
            .finish();
        let sep = if prov.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{q}", prov.authorization_endpoint))
    }

    /// Finishes a login: spends the state, exchanges the code with the
    /// verifier, verifies the ID token and maps the groups to a role.
    ///
    /// # Errors
    /// [`OidcError`].
    pub async fn finish(&self, code: &str, state: &str) -> Result<Identity, OidcError> {
        let Some(pending) = self
            .store
            .take_oidc_login(&crate::auth::keys::digest(state), crate::auth::now_nanos())
            .await
            .map_err(|e| OidcError::Store(e.to_string()))?
        else {
            return Err(OidcError::BadState);
        };
        if code.is_empty() || code.len() > 4096 {
            return Err(OidcError::BadRequest("code: missing or too long".into()));
        }
        let prov = self.provider().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.cfg.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        let mut headers = Vec::new();
        match &self.cfg.client_secret {
            Some(secret) => {
                // client_secret_basic (RFC 6749 2.3.1: each part form-encoded).
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    enc(&self.cfg.client_id),
                    enc(secret)
                ));
                headers.push((axum::http::header::AUTHORIZATION, format!("Basic {basic}")));
            }
            None => form.push(("client_id", self.cfg.client_id.as_str())),
        }
        let r = self
            .client
            .post_form(&prov.token_endpoint, &form, &headers)
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        if !r.ok() {
            let err = r
                .json::<serde_json::Value>()
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_default();
            return Err(OidcError::Provider(format!(
                "the token endpoint refused the code ({} {})",
                r.status,
                err.chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect::<String>()
            )));
        }
        let tok: serde_json::Value = r
            .json()
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let id_token = tok
            .get("id_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| OidcError::Provider("the token answer has no id_token".into()))?;
        let claims = self
            .verify_id_token(&prov, id_token, &pending.nonce)
            .await?;
        identity(&self.cfg, &claims)
    }

    async fn verify_id_token(
        &self,
        prov: &Provider,
        token: &str,
        nonce: &str,
    ) -> Result<serde_json::Value, OidcError> {
        if token.len() > 16 * 1024 {
            return Err(OidcError::Token("too long".into()));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OidcError::Token(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::Token(format!(
                "algorithm {:?}, only RS256 is accepted",
                header.alg
            )));
        }
        let key = self.key_for(&prov.jwks_uri, header.kid.as_deref()).await?;
        let mut v = Validation::new(Algorithm::RS256);
        v.algorithms = vec![Algorithm::RS256];
        v.set_issuer(&[self.cfg.issuer.as_str(), prov.issuer.as_str()]);
        v.set_audience(&[self.cfg.client_id.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .map_err(|e| OidcError::Token(e.to_string()))?;
        let claims = data.claims;
        let got = claims.get("nonce").and_then(|n| n.as_str()).unwrap_or("");
        use crate::auth::keys;
        if !keys::same(&keys::digest(got), &keys::digest(nonce)) {
            return Err(OidcError::Token("nonce does not match this login".into()));
        }
        Ok(claims)
    }
}

/// The identity in verified ID token claims, with the role its groups map to.
fn identity(cfg: &OidcConfig, claims: &serde_json::Value) -> Result<Identity, OidcError> {
    let subject = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned();
    let email = claims
        .get("email")
        .and_then(|s| s.as_str())
        .ok_or_else(|| OidcError::Token("no email claim (ask for the email scope)".into()))?
        .to_ascii_lowercase();
    if claims
        .get("email_verified")
        .and_then(serde_json::Value::as_bool)
        == Some(false)
    {
        return Err(OidcError::Token(
            "the provider says the email is not verified".into(),
        ));
    }
    let groups: Vec<String> = match claims.get(&cfg.group_claim) {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let mut role = None;
    let mut matched = Vec::new();
    for g in &groups {
        if let Some(r) = cfg.role_mapping.get(g).and_then(|r| r.parse::<Role>().ok()) {
            matched.push(g.clone());
            role = role.max(Some(r));
        }
    }
    let role = role.ok_or(OidcError::NoRole)?;
    Ok(Identity {
        email,
        subject,
        groups: matched,
        role,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg() -> OidcConfig {
        OidcConfig {
            enabled: true,
            issuer: "https://idp.example.com".into(),
            client_id: "kk".into(),
            redirect_uri: "https://kk.example.com/api/v1/auth/oidc/callback".into(),
            role_mapping: [
                ("ops".to_owned(), "maintainer".to_owned()),
                ("admins".to_owned(), "admin".to_owned()),
                ("all".to_owned(), "viewer".to_owned()),
            ]
            .into(),
            ..OidcConfig::default()
        }
    }

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn config_checks() {
        assert!(cfg().validate().is_ok());
        assert!(OidcConfig::default().validate().is_ok(), "off is fine");
        let mut c = cfg();
        c.issuer = "http://idp.example.com".into();
        assert_eq!(c.validate().unwrap_err().0, "oidc.issuer");
        let mut c = cfg();
        c.role_mapping.insert("x".into(), "root".into());
        assert_eq!(c.validate().unwrap_err().0, "oidc.role_mapping");
        let mut c = cfg();
        c.scopes = vec!["email".into()];
        assert_eq!(c.validate().unwrap_err().0, "oidc.scopes");
    }

    #[test]
    fn groups_map_to_the_highest_role() {
        let c = cfg();
        let id = identity(
            &c,
            &serde_json::json!({"sub":"1","email":"A@x.test","groups":["all","ops","other"]}),
        )
        .unwrap();
        assert_eq!(id.role, Role::Maintainer);
        assert_eq!(id.email, "a@x.test");
        assert_eq!(id.groups, vec!["all", "ops"]);
        let id = identity(
            &c,
            &serde_json::json!({"sub":"1","email":"a@x.test","groups":"admins"}),
        )
        .unwrap();
        assert_eq!(id.role, Role::Admin);
        assert!(matches!(
            identity(
                &c,
                &serde_json::json!({"sub":"1","email":"a@x.test","groups":["nope"]})
            ),
            Err(OidcError::NoRole)
        ));
        assert!(matches!(
            identity(
                &c,
                &serde_json::json!({"sub":"1","email":"a@x.test","email_verified":false,"groups":["all"]})
            ),
            Err(OidcError::Token(_))
        ));
    }
}
