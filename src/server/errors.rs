//! The errors the server answers with, word for word as OSS writes them (`oss-errors.md` §2).
//!
//! Every constructor here pins the status, `Code`, `Message`, extra elements and `EC` of one
//! documented error, so handlers never spell an OSS message themselves. Where the catalogue marks
//! the EC as unconfirmed the error has none (an empty `EC` is left out of the body).

use http::StatusCode;

use crate::error::ServiceError;

/// An error response waiting for its request id and host.
#[derive(Debug, Clone)]
pub(crate) struct OssError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) ec: &'static str,
    /// Extra elements after `HostId`, in order.
    pub(crate) fields: Vec<(&'static str, String)>,
    /// A server-side failure (I/O error, panic) rather than a verdict on the request: logged and
    /// counted so tests can fail on it.
    pub(crate) internal: bool,
}

impl OssError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            ec: "",
            fields: Vec::new(),
            internal: false,
        }
    }

    fn ec(mut self, ec: &'static str) -> Self {
        self.ec = ec;
        self
    }

    fn field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// The [`ServiceError`] the XML body is written from.
    pub(crate) fn to_service_error(&self, request_id: &str, host_id: &str) -> ServiceError {
        let mut fields: Vec<(String, String)> = self
            .fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        if !self.ec.is_empty() {
            fields.push((
                "RecommendDoc".to_owned(),
                format!("https://api.aliyun.com/troubleshoot?q={}", self.ec),
            ));
        }
        ServiceError {
            status: self.status.as_u16(),
            code: self.code.clone(),
            message: self.message.clone(),
            request_id: request_id.to_owned(),
            host_id: host_id.to_owned(),
            ec: self.ec.to_owned(),
            fields,
        }
    }

    // ----- buckets and keys -----------------------------------------------------------------

    pub(crate) fn no_such_bucket(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        )
        .field("BucketName", bucket)
        .ec("0015-00000101")
    }

    pub(crate) fn invalid_bucket_name(bucket: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidBucketName",
            "The specified bucket is not valid",
        )
        .field("BucketName", bucket)
        .ec("0015-00000001")
    }

    pub(crate) fn no_such_key(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
        .field("Key", key)
        .ec("0026-00000001")
    }

    pub(crate) fn object_name_empty() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidObjectName",
            "The Object name can not be empty",
        )
        .ec("0016-00000001")
    }

    pub(crate) fn object_name_too_long() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidObjectName",
            "The Length of Object name must be less than 1024",
        )
        .ec("0016-00000002")
    }

    pub(crate) fn object_name_invalid() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidObjectName",
            "The specified object is not valid",
        )
        .ec("0016-00000003")
    }

    // ----- multipart ----------------------------------------------------------------------

    /// `ec` differs by operation: UploadPart `0017-00000244`, Abort `0042-00000002`; the others
    /// are unconfirmed (empty).
    pub(crate) fn no_such_upload(upload_id: &str, ec: &'static str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload \
             may have been aborted or completed.",
        )
        .field("UploadId", upload_id)
        .ec(ec)
    }

    pub(crate) fn invalid_part_number(raw: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000, inclusive.",
        )
        .field("ArgumentName", "PartNumber")
        .field("ArgumentValue", raw)
        .ec("0017-00000220")
    }

    pub(crate) fn missing_part_number() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Unexpected query string parameter",
        )
        .field("ArgumentName", "ResourceType")
        .field("ArgumentValue", "partNumber")
        .ec("0017-00000219")
    }

    pub(crate) fn invalid_part(etag: &str, part_number: u32, upload_id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidPart",
            "One or more of the specified parts could not be found or the specified entity tag \
             might not have matched the part's entity tag.",
        )
        .field("ETag", etag)
        .field("PartNumber", part_number.to_string())
        .field("UploadId", upload_id)
    }

    pub(crate) fn invalid_part_order() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order.",
        )
        .ec("0042-00000209")
    }

    /// A `<PartNumber>` outside 1..=10000 in the Complete body: OSS files this under
    /// `InvalidPartOrder`, not `InvalidArgument`.
    pub(crate) fn complete_part_number_out_of_range() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "Part number must be an integer between 1 and 10000, inclusive.",
        )
    }

    pub(crate) fn entity_too_small(part_number: u32, size: u64, etag: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "EntityTooSmall",
            "Your proposed upload smaller than the minimum allowed size.",
        )
        .field("ProposedSize", size.to_string())
        .field("MinSizeAllowed", crate::limits::MIN_PART_SIZE.to_string())
        .field("PartNumber", part_number.to_string())
        .field("ETag", etag)
        .ec("0042-00000213")
    }

    pub(crate) fn complete_all_with_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Should not speficy both complete all header and http body.",
        )
        .ec("0042-00000216")
    }

    pub(crate) fn malformed_xml() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our \
             published schema.",
        )
        .ec("0042-00000205")
    }

    /// `ec`: Complete `0042-00000214`, PutObject `0026-00000002`, Initiate unconfirmed.
    pub(crate) fn file_already_exists(ec: &'static str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
        )
        .ec(ec)
    }

    // ----- bodies -------------------------------------------------------------------------

    /// `malformed`: the header is not Base64 of 16 bytes (`0017-00000502`) rather than a
    /// digest that differs from the body (`0017-00000503`).
    pub(crate) fn invalid_digest(header_value: &str, malformed: bool) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidDigest",
            "The Content-MD5 you specified was invalid.",
        )
        .field("Content-MD5", header_value)
        .ec(if malformed {
            "0017-00000502"
        } else {
            "0017-00000503"
        })
    }

    pub(crate) fn missing_content_length() -> Self {
        Self::new(
            StatusCode::LENGTH_REQUIRED,
            "MissingContentLength",
            "You must provide the Content-Length HTTP header.",
        )
    }

    /// The client stopped sending the body.
    pub(crate) fn request_timeout() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the \
             timeout period. Idle connections will be closed.",
        )
    }

    /// A part over 5 GB.
    pub(crate) fn entity_too_large() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size.",
        )
    }

    /// A PutObject body over 5 GB (OSS does not use `EntityTooLarge` here, `oss-errors.md` §4).
    pub(crate) fn inline_data_too_large() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InlineDataTooLarge",
            "Inline data exceeds the maximum allowed size.",
        )
    }

    // ----- arguments ----------------------------------------------------------------------

    pub(crate) fn invalid_argument(message: &str, name: &str, value: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
            .field("ArgumentName", name)
            .field("ArgumentValue", value)
    }

    pub(crate) fn invalid_forbid_overwrite(value: &str) -> Self {
        Self::invalid_argument(
            "The x-oss-forbid-overwrite header must be true or false.",
            "x-oss-forbid-overwrite",
            value,
        )
        .ec("0017-00000279")
    }

    pub(crate) fn invalid_encoding_type(value: &str) -> Self {
        Self::invalid_argument(
            "Invalid Encoding Method specified in Request",
            "encoding-type",
            value,
        )
        .ec("0017-00000235")
    }

    pub(crate) fn invalid_encryption_algorithm() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidEncryptionAlgorithmError",
            "The encryption algorithm specified is not valid.",
        )
    }

    pub(crate) fn invalid_range() -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            "The requested range cannot be satisfied.",
        )
    }

    pub(crate) fn precondition_failed(condition: &str) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
        .field("Condition", condition)
    }

    pub(crate) fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            format!("The local OSS server does not implement {what}."),
        )
    }

    pub(crate) fn method_not_allowed(method: &str, resource_type: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
        .field("Method", method)
        .field("ResourceType", resource_type)
    }

    // ----- authentication -----------------------------------------------------------------

    pub(crate) fn access_denied(message: &str, ec: &'static str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message).ec(ec)
    }

    pub(crate) fn anonymous() -> Self {
        Self::access_denied(
            "You have no right to access this object because of bucket acl.",
            "0003-00000001",
        )
    }

    pub(crate) fn request_expired() -> Self {
        Self::access_denied("Request has expired.", "")
    }

    pub(crate) fn invalid_access_key_id(access_key_id: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
        .field("OSSAccessKeyId", access_key_id)
        .ec("0002-00000902")
    }

    pub(crate) fn invalid_security_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidSecurityToken",
            "The security token you provided is invalid.",
        )
    }

    pub(crate) fn security_token_expired() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "SecurityTokenExpired",
            "The security token you provided has expired.",
        )
    }

    /// A signature mismatch. `string_to_sign` is the server's own string, echoed (with its
    /// bytes in hex) so a client author can diff it against theirs, as OSS does for V1;
    /// `canonical_request` is added for V4.
    pub(crate) fn signature_does_not_match(
        access_key_id: &str,
        provided: &str,
        string_to_sign: &str,
        canonical_request: Option<&str>,
        v4: bool,
    ) -> Self {
        let bytes: String = string_to_sign
            .bytes()
            .map(|b| format!("{b:02X} "))
            .collect();
        let mut error = Self::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method.",
        )
        .field("OSSAccessKeyId", access_key_id)
        .field("SignatureProvided", provided)
        .field("StringToSign", string_to_sign)
        .field("StringToSignBytes", bytes);
        if let Some(canonical_request) = canonical_request {
            error = error.field("CanonicalRequest", canonical_request);
        }
        error.ec(if v4 { "0002-00000201" } else { "0002-00000040" })
    }

    pub(crate) fn request_time_too_skewed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
        .ec("0002-00000504")
    }

    pub(crate) fn invalid_authorization(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    // ----- server side --------------------------------------------------------------------

    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("local oss server internal error: {detail}");
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Please contact the server administrator, oss@service.aliyun.com.",
        );
        error.internal = true;
        error
    }

    /// An error injected by a fault rule: the status and code it asks for, with OSS's message
    /// when the code is a documented one.
    pub(crate) fn injected(status: StatusCode, code: &str, message: Option<&str>) -> Self {
        let message = message.unwrap_or(match code {
            "InternalError" => "Please contact the server administrator, oss@service.aliyun.com.",
            "ServiceUnavailable" => "Thread pool is almost full, please retry later.",
            "QpsLimitExceeded" => "Please reduce your request rate.",
            "TotalQpsLimitExceeded" => "Max total qps limit is exceeded.",
            "RequestTimeout" => {
                "Your socket connection to the server was not read from or written to within \
                 the timeout period. Idle connections will be closed."
            }
            "RequestTimeTooSkewed" => {
                "The difference between the request time and the current time is too large."
            }
            _ => "Injected by a fault rule of the local OSS server.",
        });
        Self::new(status, code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommend_doc_follows_ec_and_fields_keep_order() {
        let error = OssError::invalid_part_number("10001");
        let service = error.to_service_error("ABC", "bucket.host");
        assert_eq!(service.status, 400);
        assert_eq!(service.code, "InvalidArgument");
        assert_eq!(service.ec, "0017-00000220");
        let names: Vec<&str> = service.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ArgumentName", "ArgumentValue", "RecommendDoc"]);
        assert_eq!(service.field("ArgumentValue"), Some("10001"));
        assert_eq!(
            service.field("RecommendDoc"),
            Some("https://api.aliyun.com/troubleshoot?q=0017-00000220")
        );
    }

    #[test]
    fn no_ec_means_no_recommend_doc() {
        let service = OssError::missing_content_length().to_service_error("A", "h");
        assert!(service.ec.is_empty());
        assert!(service.fields.is_empty());
        assert_eq!(service.status, 411);
    }

    #[test]
    fn string_to_sign_bytes_are_upper_hex_with_trailing_space() {
        let error = OssError::signature_does_not_match("ak", "sig", "PUT\n", None, false);
        let service = error.to_service_error("A", "h");
        assert_eq!(service.field("StringToSignBytes"), Some("50 55 54 0A "));
        assert_eq!(service.ec, "0002-00000040");
    }
}
