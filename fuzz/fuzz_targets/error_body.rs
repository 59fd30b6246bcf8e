//! OSS error answers: the `<Error>` body (well-formed, broken, or not XML at all), the Base64
//! `x-oss-err` header of HEAD errors, and the `x-oss-request-id` / `x-oss-ec` fallbacks.
//! `parse_error_body` and `decode_oss_err` must never panic, must keep the status, and must
//! keep the message short; an error the server writes (`error_to_xml`, `encode_oss_err`) must
//! read back with the same code, message, request id, host id and EC when those are plain text.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use osspipe::xml::{self, ServiceError};
use osspipe::Error;

const CHILDREN: &[&str] = &[
    "Code",
    "Message",
    "RequestId",
    "HostId",
    "EC",
    "RecommendDoc",
    "UploadId",
    "StringToSign",
    "ArgumentName",
    "Error",
];

#[derive(Debug, Arbitrary)]
enum Body {
    Raw(Vec<u8>),
    Error {
        children: Vec<(u8, String, bool)>,
        close_root: bool,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    status: u16,
    body: Body,
    oss_err: Option<String>,
    request_id: Option<String>,
    ec: Option<String>,
    written: Written,
}

/// A service error as the server would write it.
#[derive(Debug, Arbitrary)]
struct Written {
    code: String,
    message: String,
    request_id: String,
    host_id: String,
    ec: String,
    fields: Vec<(String, String)>,
}

fn render(children: &[(u8, String, bool)], close_root: bool) -> Vec<u8> {
    let mut text = String::from(xml::XML_DECLARATION);
    text.push_str("<Error>");
    for (name, value, escaped) in children {
        let name = CHILDREN[*name as usize % CHILDREN.len()];
        let value = if *escaped {
            value
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        } else {
            value.clone()
        };
        text.push_str(&format!("<{name}>{value}</{name}>"));
    }
    if close_root {
        text.push_str("</Error>");
    }
    text.into_bytes()
}

/// Text that survives XML and trimming unchanged.
fn plain(text: &str) -> bool {
    text.trim() == text
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " .,:;_/+=-()'\"".contains(c))
}

fn header(headers: &mut HeaderMap, name: &'static str, value: &Option<String>) {
    if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fuzz_target!(|input: Input| {
    let body = match &input.body {
        Body::Raw(bytes) => bytes.clone(),
        Body::Error {
            children,
            close_root,
        } => render(children, *close_root),
    };
    let mut headers = HeaderMap::new();
    header(&mut headers, "x-oss-err", &input.oss_err);
    header(&mut headers, "x-oss-request-id", &input.request_id);
    header(&mut headers, "x-oss-ec", &input.ec);

    let parsed = xml::parse_error_body(input.status, &body, &headers);
    assert_eq!(parsed.status, input.status);
    // The message is an excerpt, never the whole of a huge body.
    assert!(
        parsed.message.len() <= xml::MAX_ERROR_BODY_BYTES,
        "message of {} bytes",
        parsed.message.len()
    );
    let error = Error::service(parsed.clone());
    let _ = (
        error.to_string(),
        format!("{error:?}"),
        error.is_retryable(),
    );
    if let Some(value) = &input.oss_err {
        let _ = xml::decode_oss_err(value);
    }

    // What the server writes reads back the same.
    let written = ServiceError {
        status: 400,
        code: input.written.code.clone(),
        message: input.written.message.clone(),
        request_id: input.written.request_id.clone(),
        host_id: input.written.host_id.clone(),
        ec: input.written.ec.clone(),
        fields: input.written.fields.clone(),
    };
    let document = xml::error_to_xml(&written);
    let read = xml::parse_error_body(400, document.as_bytes(), &HeaderMap::new());
    let from_header = xml::decode_oss_err(&xml::encode_oss_err(&written));
    let simple = [
        &written.code,
        &written.message,
        &written.request_id,
        &written.host_id,
        &written.ec,
    ]
    .iter()
    .all(|t| plain(t) && !t.is_empty());
    if simple {
        for read in [Some(read), from_header] {
            let read = read.expect("an error the server wrote decodes");
            assert_eq!(read.code, written.code);
            assert_eq!(read.message, written.message);
            assert_eq!(read.request_id, written.request_id);
            assert_eq!(read.host_id, written.host_id);
            assert_eq!(read.ec, written.ec);
        }
    }
});
