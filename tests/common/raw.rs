//! A gRPC call with a request's bytes as they are, for the tests that send
//! what no generated client would: random bytes, or messages built from the
//! descriptors.

use prost::bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;

/// Sends and receives a gRPC message's bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, buffer: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buffer.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = buffer.chunk().to_vec();
        buffer.advance(bytes.len());
        Ok(Some(bytes))
    }
}

/// Calls `path` (`/package.Service/Method`) at `address` with `bytes`: the
/// answer's bytes, or the refusal as the caller sees it. A server stream is
/// answered by its first message, or the status that ends it.
pub async fn call(address: &str, path: &str, bytes: Vec<u8>, streaming: bool) -> Result<Vec<u8>, tonic::Status> {
    let mut client = tonic::client::Grpc::new(egov_runtime::Topology::channel(address).unwrap());
    client.ready().await.map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let path = PathAndQuery::try_from(path).unwrap();
    let request = tonic::Request::new(bytes);
    if !streaming {
        return client.unary(request, path, RawCodec).await.map(tonic::Response::into_inner);
    }
    let mut stream = client.server_streaming(request, path, RawCodec).await?.into_inner();
    match stream.message().await? {
        Some(first) => Ok(first),
        None => Ok(Vec::new()),
    }
}

/// A request whose only field (1) is an envelope with these bytes.
pub fn request_with_envelope(envelope: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x0a];
    prost::encoding::encode_varint(envelope.len() as u64, &mut bytes);
    bytes.extend_from_slice(envelope);
    bytes
}
