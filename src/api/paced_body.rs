//! A request body that pauses its reader every [`PACE_BYTES`]. The multipart parser (multer)
//! pulls chunks from the body for as long as they are ready before it hands any to its caller;
//! from a fast client on a fast link that is the whole upload, in memory. Returning `Pending`
//! (with an immediate wake-up) after each slice makes it hand over what it has, so a file part
//! goes to its staging file as it arrives, at most a slice at a time.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream};
use axum::extract::Request;
use futures_util::Stream;

/// Bytes a reader may take in one go before it is paused.
const PACE_BYTES: usize = 256 * 1024;

/// `request` with its body paced (see the module header).
pub fn paced(request: Request) -> Request {
    request.map(|body| {
        Body::from_stream(Paced {
            inner: body.into_data_stream(),
            since_pause: 0,
        })
    })
}

struct Paced {
    inner: BodyDataStream,
    since_pause: usize,
}

impl Stream for Paced {
    type Item = <BodyDataStream as Stream>::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.since_pause >= PACE_BYTES {
            self.since_pause = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => self.since_pause += chunk.len(),
            Poll::Pending => self.since_pause = 0,
            Poll::Ready(_) => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// Every byte comes through in order, with a pause after each slice.
    #[tokio::test]
    async fn paced_bodies_keep_every_byte() {
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..40u8)
            .map(|i| Ok(bytes::Bytes::from(vec![i; 64 * 1024])))
            .collect();
        let request = Request::new(Body::from_stream(futures_util::stream::iter(chunks)));
        let mut stream = paced(request).into_body().into_data_stream();
        let mut got = Vec::new();
        while let Some(chunk) = stream.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got.len(), 40 * 64 * 1024);
        assert!(
            got.chunks(64 * 1024)
                .enumerate()
                .all(|(i, c)| c.iter().all(|b| *b == i as u8))
        );
    }
}
