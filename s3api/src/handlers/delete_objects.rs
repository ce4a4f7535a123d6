//! DeleteObjects: up to 1000 keys in one request, each reported as deleted or failed.

use http::Response;

use super::{read_small_body, xml_response, RequestHead};
use crate::access::Action;
use crate::backend::S3Backend;
use crate::body::RequestBody;
use crate::enforce::RequestAccess;
use crate::error::S3Result;
use crate::router::MAX_KEY_LEN;
use crate::service::ResponseBody;
use crate::xml::{self, DeleteError, DeleteResult, DeletedObject};
use crate::{S3Error, S3ErrorCode};

pub(super) async fn delete_objects<B, RB>(
    backend: &B,
    head: &RequestHead,
    access: &RequestAccess,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    let bucket = head.bucket()?;
    let document = read_small_body(head, body).await?;
    let request = xml::parse_delete_objects(&document)?;
    let mut result = DeleteResult::default();
    for key in request.keys {
        let outcome = if key.len() > MAX_KEY_LEN {
            Err(S3Error::from(S3ErrorCode::KeyTooLongError))
        } else if !access.allows(Action::DeleteObject, Some(&key)) {
            // Each key is authorized on its own: a refused key fails, the others go on.
            Err(S3Error::from(S3ErrorCode::AccessDenied))
        } else {
            backend.delete_object(bucket, &key).await
        };
        match outcome {
            // Quiet mode reports only the failures.
            Ok(()) if request.quiet => {}
            Ok(()) => result.deleted.push(DeletedObject {
                key,
                version_id: None,
            }),
            Err(err) => result.errors.push(DeleteError::from_error(key, &err)),
        }
    }
    xml_response(result.to_xml())
}
