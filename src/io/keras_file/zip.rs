//! The members of a zip archive as Keras writes `.keras` files: stored (uncompressed)
//! entries, found through the central directory. Every offset and length is checked against
//! the archive's size; a compressed member is refused by name.

use crate::error::FileError;

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 2)
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

fn bad(what: impl Into<String>) -> FileError {
    FileError::Architecture(format!("not a readable .keras archive: {}", what.into()))
}

/// True when `bytes` start like a zip archive.
pub(crate) fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// The member named `name`, uncompressed.
pub(crate) fn member<'a>(bytes: &'a [u8], name: &str) -> Result<&'a [u8], FileError> {
    // The end-of-central-directory record: the last "PK\x05\x06" within 64 KiB + 22 bytes.
    let lo = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (lo..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| bad("no end of central directory"))?;
    let entries = u16_at(bytes, eocd + 10).ok_or_else(|| bad("truncated directory"))?;
    let mut at = u32_at(bytes, eocd + 16).ok_or_else(|| bad("truncated directory"))?;
    for _ in 0..entries {
        if !bytes
            .get(at..)
            .is_some_and(|b| b.starts_with(b"PK\x01\x02"))
        {
            return Err(bad("a damaged central directory entry"));
        }
        let field = |off| u16_at(bytes, at + off).ok_or_else(|| bad("truncated entry"));
        let method = field(10)?;
        let size = u32_at(bytes, at + 20).ok_or_else(|| bad("truncated entry"))?;
        let (n, extra, comment) = (field(28)?, field(30)?, field(32)?);
        let local = u32_at(bytes, at + 42).ok_or_else(|| bad("truncated entry"))?;
        let entry_name = bytes
            .get(at + 46..at + 46 + n)
            .ok_or_else(|| bad("truncated entry name"))?;
        if entry_name == name.as_bytes() {
            if method != 0 {
                return Err(bad(format!(
                    "member {name} is compressed (method {method}); Keras stores members uncompressed"
                )));
            }
            if !bytes
                .get(local..)
                .is_some_and(|b| b.starts_with(b"PK\x03\x04"))
            {
                return Err(bad(format!("member {name}: damaged local header")));
            }
            let (ln, lextra) = (
                u16_at(bytes, local + 26).ok_or_else(|| bad("truncated local header"))?,
                u16_at(bytes, local + 28).ok_or_else(|| bad("truncated local header"))?,
            );
            let start = local + 30 + ln + lextra;
            return bytes
                .get(start..start + size)
                .ok_or_else(|| bad(format!("member {name} runs past the end")));
        }
        at += 46 + n + extra + comment;
    }
    Err(bad(format!("no member {name}")))
}
