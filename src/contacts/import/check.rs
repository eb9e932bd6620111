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

pub fn reader(file: impl Read) -> csv::Reader<impl Read> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(file)
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

/// Checks the whole file: UTF-8, CSV, a header with an `email` column, at least
/// one row, nothing binary. Runs on a blocking thread.
pub fn check_file(path: &Path) -> Result<CheckedFile, String> {
    let file = std::fs::File::open(path)
        .map_err(|_| "The uploaded file could not be read.".to_string())?;
    let mut csv = reader(std::io::BufReader::new(file));
    let describe = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => format!(
            "The file is not UTF-8 text (line {}). Save it as \"CSV UTF-8\" and upload it again.",
            pos.as_ref().map_or(0, |p| p.line())
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
