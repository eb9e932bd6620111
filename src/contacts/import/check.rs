//! The whole-file check of an upload: UTF-8, CSV, a header with an `email` column,
//! at least one row, nothing binary. A file that fails it changes nothing.

use std::io::Read;
use std::path::Path;

use crate::types::parse_attribute_name;

/// The largest file accepted.
pub const MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// What the header row says about the columns.
#[derive(Debug, Clone)]
pub struct Columns {
    pub email: usize,
    pub first_name: Option<usize>,
    pub last_name: Option<usize>,
    /// (column index, attribute name)
    pub attributes: Vec<(usize, String)>,
    pub width: usize,
}

/// A file that passed the whole-file check.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    pub columns: Columns,
    pub rows: u64,
}

/// Opens an upload as CSV, its separator taken from the header row: a comma, a
/// semicolon (what Excel writes as "CSV UTF-8" where the decimal mark is a comma)
/// or a tab, whichever the header row holds most of outside quotes.
pub fn open(path: &Path, buffer: usize) -> std::io::Result<csv::Reader<impl Read>> {
    let mut file = std::fs::File::open(path)?;
    let mut start = vec![0; 64 * 1024];
    let mut read = 0;
    while read < start.len() {
        match file.read(&mut start[read..])? {
            0 => break,
            n => read += n,
        }
    }
    start.truncate(read);
    let delimiter = separator(&start);
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))?;
    Ok(csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .delimiter(delimiter)
        .from_reader(std::io::BufReader::with_capacity(buffer, file)))
}

/// The separator of a CSV file's first row (see [`open`]); a comma when in doubt.
pub fn separator(start: &[u8]) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in start {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
                    c.1 += 1;
                }
            }
            _ => {}
        }
    }
    // The first of the most frequent: a comma wins a tie.
    counts
        .iter()
        .fold((b',', 0), |best, c| if c.1 > best.1 { *c } else { best })
        .0
}

/// Reads the header row into [`Columns`].
pub fn parse_header(header: &csv::StringRecord) -> Result<Columns, String> {
    let mut email = None;
    let mut first_name = None;
    let mut last_name = None;
    let mut attributes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in header.iter().enumerate() {
        let name = raw.trim_start_matches('\u{feff}').trim();
        if !seen.insert(name.to_lowercase()) {
            return Err(format!(
                "The column {name:?} appears twice in the header row."
            ));
        }
        match name.to_lowercase().as_str() {
            "email" => email = Some(i),
            "first_name" => first_name = Some(i),
            "last_name" => last_name = Some(i),
            _ => {
                let n = parse_attribute_name(name)
                    .map_err(|e| format!("Column {} of the header row ({name:?}): {e}", i + 1))?;
                attributes.push((i, n));
            }
        }
    }
    let email = email.ok_or("The header row has no \"email\" column.")?;
    Ok(Columns {
        email,
        first_name,
        last_name,
        attributes,
        width: header.len(),
    })
}

/// The line of the first byte that is not UTF-8 (csv's record positions lag a
/// line behind after CRLF line ends). Read only when the file is refused.
fn first_non_utf8_line(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let valid = std::str::from_utf8(&bytes).err()?.valid_up_to();
    Some(bytes[..valid].iter().filter(|b| **b == b'\n').count() as u64 + 1)
}

/// Checks the whole file: UTF-8, CSV, a header with an `email` column, at least
/// one row, nothing binary. Runs on a blocking thread.
pub fn check_file(path: &Path) -> Result<CheckedFile, String> {
    let mut csv =
        open(path, 64 * 1024).map_err(|_| "The uploaded file could not be read.".to_string())?;
    let describe = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => format!(
            "The file is not UTF-8 text (line {}). Save it as \"CSV UTF-8\" and upload it again.",
            first_non_utf8_line(path).unwrap_or(pos.as_ref().map_or(0, |p| p.line()))
        ),
        _ => format!("The file is not valid CSV: {e}"),
    };
    let header = csv.headers().map_err(describe)?.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err("The file is empty.".into());
    }
    if header.iter().any(|h| h.contains('\0')) {
        return Err("This looks like a binary file, not a CSV file.".into());
    }
    let columns = parse_header(&header)?;
    let mut rows = 0u64;
    let mut record = csv::StringRecord::new();
    while csv.read_record(&mut record).map_err(describe)? {
        if record.iter().any(|f| f.contains('\0')) {
            return Err("This looks like a binary file, not a CSV file.".into());
        }
        rows += 1;
    }
    if rows == 0 {
        return Err("The file has a header row but no contacts below it.".into());
    }
    Ok(CheckedFile { columns, rows })
}

/// The valid addresses in a checked file, lowercased as contacts keep them (an
/// unreadable file gives none). Runs on a blocking thread.
pub fn addresses(path: &Path) -> std::collections::HashSet<String> {
    let mut found = std::collections::HashSet::new();
    let Ok(mut csv) = open(path, 256 * 1024) else {
        return found;
    };
    let Some(columns) = csv.headers().ok().and_then(|h| parse_header(h).ok()) else {
        return found;
    };
    let mut record = csv::StringRecord::new();
    while let Ok(true) = csv.read_record(&mut record) {
        if let Some(email) = record
            .get(columns.email)
            .and_then(|e| crate::types::EmailAddress::parse(e.trim()).ok())
        {
            found.insert(email.as_str().to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(content: &[u8]) -> Result<CheckedFile, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.csv");
        std::fs::write(&path, content).unwrap();
        check_file(&path)
    }

    #[test]
    fn the_separator_is_read_from_the_header_row() {
        assert_eq!(separator(b"email,first_name,plan\n"), b',');
        assert_eq!(
            separator(b"\xef\xbb\xbfemail;first_name;plan\r\na;b;c"),
            b';'
        );
        assert_eq!(separator(b"email\tfirst_name\n"), b'\t');
        // Separators inside quotes do not count; a lone column is a comma file.
        assert_eq!(separator(b"\"a;b;c\",email\n"), b',');
        assert_eq!(separator(b"email\nx;y;z;w\n"), b',');
        // German Excel's "CSV UTF-8": semicolons, a BOM, decimal commas in values.
        let file = checked(
            "\u{feff}email;first_name;Betrag\r\nanna@example.com;Anna;\"3,50\"\r\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(file.rows, 1);
        assert_eq!(file.columns.first_name, Some(1));
        assert_eq!(file.columns.attributes, vec![(2, "Betrag".to_string())]);
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_with_the_line_it_breaks_on() {
        let e =
            checked(b"email,first_name\na@example.com,Ann\nb@example.com,M\xfcller\n").unwrap_err();
        assert!(e.contains("not UTF-8") && e.contains("(line 3)"), "{e}");
        let e = checked(b"email,M\xfcller\na@example.com,Ann\n").unwrap_err();
        assert!(e.contains("(line 1)"), "{e}");
        let e =
            checked(b"email,note\na@example.com,\"two\nlines\"\nb@example.com,\xfc\n").unwrap_err();
        assert!(e.contains("(line 4)"), "{e}");
        let e =
            checked(b"email;first\r\na@example.com;Ann\r\nb@example.com;M\xfc\r\n").unwrap_err();
        assert!(e.contains("(line 3)"), "{e}");
    }
}
