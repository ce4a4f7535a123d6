//! S3 XML bodies — being implemented.
