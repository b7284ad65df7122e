//! The one shape of the tower layers in front of every participant's
//! services (`tls`, `fault`, `reasons`, `observe`, `trace`): each says what
//! it does around one call ([`Around`]), and [`Wrapped`] is the service that
//! does it, the same for all of them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A call's answer on its way back through the layers.
pub type Response = http::Response<tonic::body::Body>;

/// What a layer's work on one call comes to.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a layer wraps: a participant's services, or the layer inside it.
pub trait Inner<B>:
    tower_service::Service<http::Request<B>, Response = Response, Future: Send + 'static, Error: Send + 'static>
    + Send
    + 'static
{
}

impl<T, B> Inner<B> for T where
    T: tower_service::Service<http::Request<B>, Response = Response, Future: Send + 'static, Error: Send + 'static>
        + Send
        + 'static
{
}

/// What a layer does with one call: `inner` (ready to be called) answers it
/// when the layer lets the call through.
pub trait Around: Clone + Send + Sync + 'static {
    fn around<S, B>(&self, request: http::Request<B>, inner: S) -> BoxFuture<Result<Response, S::Error>>
    where
        S: Inner<B>,
        B: Send + 'static;
}

/// The service a layer makes around `inner`.
#[derive(Debug, Clone)]
pub struct Wrapped<A, S> {
    around: A,
    inner: S,
}

impl<A, S> Wrapped<A, S> {
    pub fn new(around: A, inner: S) -> Wrapped<A, S> {
        Wrapped { around, inner }
    }
}

impl<A, S, B> tower_service::Service<http::Request<B>> for Wrapped<A, S>
where
    A: Around,
    S: Inner<B> + Clone,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is ready only after poll_ready: the call goes to the one that was polled.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        self.around.around(request, inner)
    }
}
