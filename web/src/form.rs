//! `WebForm<T>`: an urlencoded form body into `T`; a malformed body or a
//! missing field is the 400 page (axum's own `Form` would answer 422 in
//! plain text). The body size limit is applied by `csrf::protect`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::WebError;

pub struct WebForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for WebForm<T> {
    type Rejection = WebError;
    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::BadRequest("The request is too large or was cut off.".into()))?;
        serde_urlencoded::from_bytes(&bytes)
            .map(WebForm)
            .map_err(|e| WebError::BadRequest(format!("The form was incomplete or malformed ({e}).")))
    }
}
