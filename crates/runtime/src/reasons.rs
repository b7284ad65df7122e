//! No status leaves a participant without a reason code: a tower layer in
//! front of every participant's services gives one to the refusals tonic
//! makes before the receive pipeline sees the call (a request that does not
//! decode, a message over the transport's limit, an unknown method).

use tonic::Code;

use crate::around::{Around, BoxFuture, Inner, Response, Wrapped};

use crate::status::{REASON_KEY, Refusal};

/// The layer; see the module's documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReasonLayer;

impl<S> tower_layer::Layer<S> for ReasonLayer {
    type Service = Wrapped<ReasonLayer, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Wrapped::new(*self, inner)
    }
}

/// The reason code of a status tonic made itself.
fn reason_for(status: &tonic::Status) -> (Code, &'static str) {
    let message = status.message();
    match status.code() {
        // A request whose protobuf does not decode (garbage, truncated, invalid UTF-8).
        Code::Internal if message.contains("decode") => (Code::InvalidArgument, "request.malformed"),
        // Over the transport's limit (64 MiB).
        Code::OutOfRange if message.contains("too large") => (Code::ResourceExhausted, "envelope.too_large"),
        Code::Unimplemented => (Code::Unimplemented, "request.unknown_method"),
        code => (code, "request.failed"),
    }
}

impl Around for ReasonLayer {
    fn around<S, B>(&self, request: http::Request<B>, mut inner: S) -> BoxFuture<Result<Response, S::Error>>
    where
        S: Inner<B>,
        B: Send + 'static,
    {
        Box::pin(async move {
            let response = inner.call(request).await?;
            // A refusal before any answer is a trailers-only response: its status is in the headers.
            let headers = response.headers();
            if headers.contains_key(REASON_KEY) {
                return Ok(response);
            }
            match tonic::Status::from_header_map(headers) {
                Some(status) if status.code() != Code::Ok => {
                    let (code, reason) = reason_for(&status);
                    Ok(Refusal::new(code, reason, status.message()).into_status().into_http())
                }
                _ => Ok(response),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_s_own_refusals_get_a_reason_code() {
        for (status, expected) in [
            (
                tonic::Status::internal("failed to decode Protobuf message: invalid wire type"),
                (Code::InvalidArgument, "request.malformed"),
            ),
            (
                tonic::Status::out_of_range("decoded message length too large: found 70000000 bytes"),
                (Code::ResourceExhausted, "envelope.too_large"),
            ),
            (tonic::Status::unimplemented(""), (Code::Unimplemented, "request.unknown_method")),
            (tonic::Status::unavailable("no"), (Code::Unavailable, "request.failed")),
        ] {
            assert_eq!(reason_for(&status), expected, "{status:?}");
        }
    }
}
