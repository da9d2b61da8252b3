//! How the CLI prints: aligned tables for people, `--json` for scripts, and API errors
//! with the server's message and the fields at fault.

use hookrelay_client::Error as ApiError;

/// Prints `rows` under `headers`, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints `label: value` lines, labels aligned.
pub fn fields(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    for (label, value) in pairs {
        let label = format!("{label}:");
        let mut lines = value.lines();
        println!("{label:<width$} {}", lines.next().unwrap_or_default());
        for more in lines {
            println!("{:<width$} {more}", "");
        }
    }
}

/// Prints a value as pretty JSON.
pub fn json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("API values serialise"));
}

/// Prints an error for a person: the server's message and each broken rule.
pub fn print_error(error: &anyhow::Error) {
    if let Some(ApiError::Api {
        code,
        reason,
        message,
        details,
    }) = error.downcast_ref::<ApiError>()
    {
        eprintln!("error: {message} ({code} {reason})");
        for detail in details {
            eprintln!("  {}: {} [{}]", detail.field, detail.message, detail.rule);
        }
    } else {
        eprintln!("error: {error:#}");
    }
}
