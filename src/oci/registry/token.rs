//! Answering registry auth challenges: basic credentials or bearer tokens per scope.

use super::{auth, root_cause, Client};
use crate::oci::OciError;
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;

impl Client {
    pub(super) fn auth_header(&self, registry: &str, scope_key: &str) -> Option<String> {
        self.with_state(registry, |s| {
            let ch = s.challenge.as_ref()?;
            match ch.scheme.as_str() {
                "bearer" => s.tokens.get(scope_key).map(|t| format!("Bearer {t}")),
                "basic" => s.cred.as_ref().map(auth::basic_header),
                _ => None,
            }
        })
    }

    /// Answers a 401 challenge: stores it and fetches a token for the scopes.
    pub(super) async fn authenticate(
        &self,
        registry: &str,
        header: Option<&str>,
        scopes: &[String],
    ) -> Result<(), OciError> {
        let unauthorized = || OciError::Unauthorized {
            registry: registry.to_string(),
            source_desc: self.cred_source(registry),
        };
        let challenge = header
            .and_then(auth::parse_challenge)
            .ok_or_else(unauthorized)?;
        self.with_state(registry, |s| s.challenge = Some(challenge.clone()));
        let cred = self.with_state(registry, |s| s.cred.clone());
        match challenge.scheme.as_str() {
            "basic" => cred.map(|_| ()).ok_or_else(unauthorized),
            "bearer" => {
                let realm = challenge.params.get("realm").ok_or_else(unauthorized)?;
                let service = challenge.params.get("service").cloned().unwrap_or_default();
                let req = match &cred {
                    Some(c) if c.identity_token => {
                        let mut form = vec![
                            ("grant_type", "refresh_token".to_string()),
                            ("refresh_token", c.secret.expose().to_string()),
                            ("service", service.clone()),
                            ("client_id", "kiln".to_string()),
                        ];
                        form.push(("scope", scopes.join(" ")));
                        self.http.for_url(realm)?.post(realm).form(&form)
                    }
                    _ => {
                        let mut q: Vec<(&str, &str)> = Vec::new();
                        if !service.is_empty() {
                            q.push(("service", &service));
                        }
                        for s in scopes {
                            q.push(("scope", s));
                        }
                        let r = self.http.for_url(realm)?.get(realm).query(&q);
                        match &cred {
                            Some(c) => r.header(AUTHORIZATION, auth::basic_header(c)),
                            None => r,
                        }
                    }
                };
                let resp = req.send().await.map_err(|e| OciError::Transport {
                    registry: registry.to_string(),
                    message: format!("token request to {realm}: {}", root_cause(&e)),
                })?;
                if resp.status() == StatusCode::UNAUTHORIZED
                    || resp.status() == StatusCode::FORBIDDEN
                {
                    return Err(unauthorized());
                }
                if !resp.status().is_success() {
                    return Err(OciError::Status {
                        registry: registry.to_string(),
                        method: "GET".into(),
                        path: realm.clone(),
                        status: resp.status().as_u16(),
                        detail: Some("token request failed".into()),
                    });
                }
                #[derive(serde::Deserialize)]
                struct Tok {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body = resp.bytes().await.map_err(|e| OciError::Transport {
                    registry: registry.to_string(),
                    message: format!("reading the token answer from {realm}: {}", root_cause(&e)),
                })?;
                let tok: Tok = serde_json::from_slice(&body).map_err(|_| OciError::Transport {
                    registry: registry.to_string(),
                    message: format!("token answer from {realm} is not valid JSON"),
                })?;
                let token = tok
                    .token
                    .or(tok.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(unauthorized)?;
                let key = scopes.join(" ");
                self.with_state(registry, |s| {
                    s.tokens.insert(key, token);
                });
                Ok(())
            }
            _ => Err(unauthorized()),
        }
    }
}
