//! `hookrelay.example.toml` against the declaration: every setting in it, each with its
//! declared default as the value, or commented out with an example value when it has no
//! default, and nothing else.

use std::collections::BTreeMap;

use clap::{Arg, FromArgMatches};

use super::settings::declared;
use super::{ConfigFile, Settings};

const EXAMPLE: &str = include_str!("../../../../hookrelay.example.toml");

/// A setting shown commented out, `# key = value`: the line without its `# `.
fn commented_out(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# ")?;
    let (key, _) = rest.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then_some(rest)
}

/// The keys the file sets, and those it shows commented out.
fn keys_in(text: &str) -> (toml::Table, Vec<String>) {
    let set: toml::Table = toml::from_str(text).expect("the example file is valid TOML");
    let commented = text
        .lines()
        .filter_map(commented_out)
        .filter_map(|rest| Some(rest.split_once('=')?.0.trim().to_owned()))
        .collect();
    (set, commented)
}

fn default_of(arg: &Arg) -> Option<String> {
    let values: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn as_flag_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[test]
fn the_example_file_holds_every_setting_with_its_default() {
    let command = declared();
    let (set, commented) = keys_in(EXAMPLE);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for key in set.keys().chain(&commented) {
        *seen.entry(key.clone()).or_default() += 1;
    }
    for arg in command.get_arguments() {
        let key = arg.get_id().as_str();
        assert_eq!(
            seen.remove(key),
            Some(1),
            "`{key}` must appear once in hookrelay.example.toml"
        );
        match (default_of(arg), set.get(key)) {
            (Some(default), Some(value)) => assert_eq!(as_flag_text(value), default, "`{key}`"),
            (Some(default), None) => panic!("`{key}` has a default ({default}): set it, not commented out"),
            (None, Some(_)) => panic!("`{key}` has no default: show it commented out"),
            (None, None) => {}
        }
    }
    assert!(seen.is_empty(), "not settings: {:?}", seen.keys());
}

#[test]
fn every_setting_is_keyed_by_its_variable() {
    for arg in declared().get_arguments() {
        let key = arg.get_id().as_str();
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert_eq!(env, Some(format!("HOOKRELAY_{}", key.to_uppercase())), "`{key}`");
        assert!(arg.get_long().is_some(), "`{key}` has a flag");
        assert!(arg.get_help().is_some(), "`{key}` has help");
    }
}

#[test]
fn the_commented_out_examples_are_valid_values() {
    let uncommented: String = EXAMPLE
        .lines()
        .map(|line| commented_out(line).unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.toml");
    std::fs::write(&path, uncommented).unwrap();
    let command = declared().mut_args(|arg| arg.env(None));
    let matches = command.try_get_matches_from(["hookrelay"]).unwrap();
    let settings = Settings::from_arg_matches(&matches).unwrap();
    let file = ConfigFile { path: Some(path) };
    let loaded = settings.load(&file, &matches).unwrap();
    assert!(loaded.serve.smtp_url.is_some() && loaded.store.master_key.is_some());
    // With every example in, the settings still hold together.
    loaded.resolve().unwrap();
}
