//! Request bodies decoded as dockerd decodes them (Go's `json.NewDecoder(body).Decode`): a
//! missing body is "got EOF while reading request body", a syntax error carries Go's scanner
//! text ("invalid character 'i' looking for beginning of object key string", "unexpected
//! EOF"), and content after the value is refused as newer dockerds refuse it. Clients and
//! moby's own suite match these texts; each is a 400.

use serde::de::DeserializeOwned;

use crate::{ApiError, ApiResult};

/// dockerd's answer to an empty body where one is required.
pub(crate) const EOF: &str = "got EOF while reading request body";

/// Decode a required JSON body.
pub(crate) fn decode<T: DeserializeOwned>(b: &[u8]) -> ApiResult<T> {
    let end = first_value(b).map_err(ApiError::invalid)?;
    serde_json::from_slice(&b[..end]).map_err(|e| ApiError::invalid(e.to_string()))
}

/// The end of the first JSON value in `b`, or Go's error text for it.
pub(crate) fn first_value(b: &[u8]) -> Result<usize, String> {
    let mut s = Scanner { b, i: 0 };
    s.skip_ws();
    if s.i == b.len() {
        return Err(EOF.into());
    }
    s.value()?;
    let end = s.i;
    s.skip_ws();
    if s.i < b.len() {
        return Err("unexpected content after JSON".into());
    }
    Ok(end)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// Go's `quoteChar`: the offending byte as the scanner prints it.
fn quote(c: u8) -> String {
    match c {
        b'\'' => r"'\''".into(),
        b'"' => "'\"'".into(),
        0x20..=0x7e => format!("'{}'", c as char),
        0x07 => r"'\a'".into(),
        0x08 => r"'\b'".into(),
        0x09 => r"'\t'".into(),
        0x0a => r"'\n'".into(),
        0x0b => r"'\v'".into(),
        0x0c => r"'\f'".into(),
        0x0d => r"'\r'".into(),
        0x00..=0x7f => format!(r"'\x{c:02x}'"),
        0x80..=0xa0 | 0xad => format!(r"'\u{c:04x}'"),
        _ => format!("'{}'", char::from(c)),
    }
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// The next byte, or Go's "unexpected EOF" when the body ends inside a value.
    fn peek(&self) -> Result<u8, String> {
        self.b
            .get(self.i)
            .copied()
            .ok_or_else(|| "unexpected EOF".to_string())
    }

    fn bad(&self, c: u8, context: &str) -> String {
        format!("invalid character {} {context}", quote(c))
    }

    fn value(&mut self) -> Result<(), String> {
        self.skip_ws();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            c => Err(self.bad(c, "looking for beginning of value")),
        }
    }

    fn object(&mut self) -> Result<(), String> {
        self.i += 1;
        self.skip_ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            match self.peek()? {
                b'"' => self.string()?,
                c => return Err(self.bad(c, "looking for beginning of object key string")),
            }
            self.skip_ws();
            match self.peek()? {
                b':' => self.i += 1,
                c => return Err(self.bad(c, "after object key")),
            }
            self.value()?;
            self.skip_ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                c => return Err(self.bad(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> Result<(), String> {
        self.i += 1;
        self.skip_ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value()?;
            self.skip_ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(());
                }
                c => return Err(self.bad(c, "after array element")),
            }
        }
    }

    fn string(&mut self) -> Result<(), String> {
        self.i += 1;
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Ok(()),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            for _ in 0..4 {
                                let h = self.peek()?;
                                if !h.is_ascii_hexdigit() {
                                    return Err(self.bad(h, "in \\u hexadecimal character escape"));
                                }
                                self.i += 1;
                            }
                        }
                        e => return Err(self.bad(e, "in string escape code")),
                    }
                }
                c if c < 0x20 => return Err(self.bad(c, "in string literal")),
                _ => {}
            }
        }
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    fn number(&mut self) -> Result<(), String> {
        if self.peek()? == b'-' {
            self.i += 1;
            match self.peek()? {
                b'0'..=b'9' => {}
                c => return Err(self.bad(c, "in numeric literal")),
            }
        }
        if self.peek()? == b'0' {
            self.i += 1;
        } else {
            self.digits();
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            match self.peek()? {
                b'0'..=b'9' => self.digits(),
                c => return Err(self.bad(c, "after decimal point in numeric literal")),
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek()?, b'+' | b'-') {
                self.i += 1;
            }
            match self.peek()? {
                b'0'..=b'9' => self.digits(),
                c => return Err(self.bad(c, "in exponent of numeric literal")),
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), String> {
        for want in word.bytes() {
            let c = self.peek()?;
            if c != want {
                let ctx = format!("in literal {word} (expecting {})", quote(want));
                return Err(self.bad(c, &ctx));
            }
            self.i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_scanner_texts() {
        let cases: &[(&str, Result<usize, &str>)] = &[
            (
                "{invalid json",
                Err("invalid character 'i' looking for beginning of object key string"),
            ),
            ("", Err(EOF)),
            (" \n", Err(EOF)),
            ("{", Err("unexpected EOF")),
            ("{\"a\"", Err("unexpected EOF")),
            ("{\"a\" 1}", Err("invalid character '1' after object key")),
            (
                "{\"a\":1 \"b\"}",
                Err("invalid character '\"' after object key:value pair"),
            ),
            ("[1 2]", Err("invalid character '2' after array element")),
            (
                "x",
                Err("invalid character 'x' looking for beginning of value"),
            ),
            (
                "{\"a\":tru}",
                Err("invalid character '}' in literal true (expecting 'e')"),
            ),
            ("{\"a\":nul", Err("unexpected EOF")),
            (
                "\"\\q\"",
                Err("invalid character 'q' in string escape code"),
            ),
            (
                "\"\\u12g4\"",
                Err("invalid character 'g' in \\u hexadecimal character escape"),
            ),
            ("-x", Err("invalid character 'x' in numeric literal")),
            (
                "1.x",
                Err("invalid character 'x' after decimal point in numeric literal"),
            ),
            ("1e+", Err("unexpected EOF")),
            (
                "\"a\u{1}\"",
                Err(r"invalid character '\x01' in string literal"),
            ),
            ("\"a\n\"", Err(r"invalid character '\n' in string literal")),
            (
                "{'a':1}",
                Err(r"invalid character '\'' looking for beginning of object key string"),
            ),
            ("{} trailing", Err("unexpected content after JSON")),
            ("{} \n", Ok(2)),
        ];
        for (input, want) in cases {
            let got = first_value(input.as_bytes());
            assert_eq!(
                got.as_ref().map_err(String::as_str),
                want.as_ref().map_err(|e| *e),
                "{input:?}"
            );
        }
    }

    #[test]
    fn whole_values_scan_to_their_end() {
        let v = " {\"a\":[1,-2.5e3,0,true,null,{\"b\":\"\\u00e9\\n\"}],\"c\":false}";
        assert_eq!(first_value(v.as_bytes()), Ok(v.len()));
        assert!(serde_json::from_str::<serde_json::Value>(v).is_ok());
    }

    #[test]
    fn decode_reads_one_value() {
        let v: serde_json::Value = decode(b"{\"Name\":\"x\"}\n").unwrap();
        assert_eq!(v["Name"], "x");
        let e = decode::<serde_json::Value>(b"").unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (crate::ErrorKind::Invalid, EOF)
        );
    }
}
