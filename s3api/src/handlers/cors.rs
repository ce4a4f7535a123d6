//! The CORS sub-resource (GetBucketCors, PutBucketCors, DeleteBucketCors) and preflight
//! requests (`OPTIONS`). Who may change the configuration was decided before (see
//! [`crate::enforce`]); preflights are answered to anyone, as in AWS.

use http::{Response, StatusCode};

use super::{empty_response, read_small_body, xml_response, RequestHead};
use crate::backend::S3Backend;
use crate::body::RequestBody;
use crate::cors::CorsConfiguration;
use crate::enforce::{BucketGuard, RequestAccess};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::service::{empty_body, ResponseBody};

fn bucket_of(access: &RequestAccess) -> S3Result<&BucketGuard> {
    access
        .bucket()
        .ok_or_else(|| S3Error::internal("no bucket permissions were read for a CORS request"))
}

pub(super) fn get_bucket_cors(access: &RequestAccess) -> S3Result<Response<ResponseBody>> {
    let guard = bucket_of(access)?;
    let stored = guard.cors.as_deref().ok_or_else(|| {
        S3Error::from(S3ErrorCode::NoSuchCORSConfiguration).with_detail("BucketName", &guard.name)
    })?;
    // Stored in canonical form, so it is answered as it is.
    xml_response(stored.to_owned())
}

/// Stores the configuration after validating it (MalformedXML, InvalidRequest otherwise).
pub(super) async fn put_bucket_cors<B, RB>(
    backend: &B,
    head: &RequestHead,
    body: RB,
) -> S3Result<Response<ResponseBody>>
where
    B: S3Backend,
    RB: RequestBody,
{
    let document = read_small_body(head, body).await?;
    let configuration = CorsConfiguration::parse(&document)?;
    backend
        .put_bucket_cors(head.bucket()?, Some(&configuration.to_xml()))
        .await?;
    empty_response(StatusCode::OK)
}

/// Removes the configuration; succeeds when there is none (as in AWS).
pub(super) async fn delete_bucket_cors<B: S3Backend>(
    backend: &B,
    head: &RequestHead,
    access: &RequestAccess,
) -> S3Result<Response<ResponseBody>> {
    if bucket_of(access)?.cors.is_some() {
        backend.put_bucket_cors(head.bucket()?, None).await?;
    }
    empty_response(StatusCode::NO_CONTENT)
}

/// Answers `OPTIONS`: 200 with the first matching rule's headers, 403 AccessForbidden when
/// the bucket has no configuration or no rule allows the request, 400 when the request is
/// not a preflight (no `Origin` or no `Access-Control-Request-Method`).
pub(super) fn preflight(
    head: &RequestHead,
    access: &RequestAccess,
) -> S3Result<Response<ResponseBody>> {
    let origin = head.header("origin").ok_or_else(|| {
        S3Error::new(
            S3ErrorCode::BadRequest,
            "Insufficient information. Origin request header needed.",
        )
    })?;
    let method = head
        .header("access-control-request-method")
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::BadRequest,
                "Invalid Access-Control-Request-Method: null",
            )
        })?;
    let resource_type = if head.key.is_some() {
        "OBJECT"
    } else {
        "BUCKET"
    };
    let refused = |message: &str| {
        S3Error::new(S3ErrorCode::AccessForbidden, message)
            .with_detail("Method", method)
            .with_detail("ResourceType", resource_type)
    };
    let stored = bucket_of(access)?
        .cors
        .as_deref()
        .ok_or_else(|| refused("CORSResponse: CORS is not enabled for this bucket."))?;
    let configuration = CorsConfiguration::from_stored(stored)?;
    let headers = configuration
        .preflight(
            origin,
            method,
            head.header("access-control-request-headers"),
        )
        .ok_or_else(|| {
            refused(
                "CORSResponse: This CORS request is not allowed. This is usually because the \
                 evalution of Origin, request method / Access-Control-Request-Method or \
                 Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            )
        })?;
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .body(empty_body())
        .map_err(S3Error::internal)?;
    headers.apply(response.headers_mut());
    Ok(response)
}
