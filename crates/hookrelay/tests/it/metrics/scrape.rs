//! A scrape, parsed by `prometheus_client`'s text parser (run through `parse.py`), and
//! what the tests ask of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const PARSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/metrics/parse.py");

#[derive(Debug, Deserialize)]
pub struct Scrape {
    families: Vec<Family>,
}

#[derive(Debug, Deserialize)]
struct Family {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    samples: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// `GET url`, answered 200 in Prometheus' text format, parsed.
pub async fn scrape(url: &str) -> Scrape {
    let response = reqwest::get(url).await.expect("scrape");
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{url}");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    let json = run_parser(&[], Some(&text)).await;
    serde_json::from_value(json).unwrap_or_else(|e| panic!("parser output: {e}"))
}

/// A YAML file as JSON, read by PyYAML.
pub fn yaml_as_json(path: &Path) -> Value {
    let output = std::process::Command::new("python3")
        .arg(PARSER)
        .arg("yaml")
        .arg(path)
        .output()
        .expect("python3");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn run_parser(args: &[&str], input: Option<&str>) -> Value {
    let mut child = tokio::process::Command::new("python3")
        .arg(PARSER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with prometheus_client: .ci/run installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or_default().as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the scrape: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        input.unwrap_or_default()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The `hookrelay_…` names in a PromQL expression.
pub fn metric_names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("hookrelay_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// A series' labels but `le`, in order.
type Labels = Vec<(String, String)>;

impl Scrape {
    fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.families.iter().flat_map(|f| f.samples.iter())
    }

    /// The sample `name` with exactly `labels`; panics if there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples()
            .find(|s| s.name == name && s.labels == wanted)
            .unwrap_or_else(|| panic!("no sample {name}{wanted:?} among {:?}", self.family_names()))
            .value
    }

    /// Each family's name (a counter's without `_total`, as the parser names it).
    pub fn family_names(&self) -> Vec<&str> {
        self.families.iter().map(|f| f.name.as_str()).collect()
    }

    /// Whether any sample is named `name`.
    pub fn has_sample(&self, name: &str) -> bool {
        self.samples().any(|s| s.name == name)
    }

    /// Every histogram's buckets grow with `le`, and its `+Inf` bucket is its count.
    pub fn assert_histograms_consistent(&self) {
        let histograms: Vec<_> = self.families.iter().filter(|f| f.kind == "histogram").collect();
        assert!(histograms.len() >= 2, "{self:?}");
        for family in histograms {
            let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            let mut counts = BTreeMap::new();
            for sample in &family.samples {
                let mut labels = sample.labels.clone();
                let le = labels.remove("le");
                let key: Vec<_> = labels.into_iter().collect();
                if sample.name.ends_with("_bucket") {
                    let le = le.expect("a bucket's le");
                    let bound = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    series.entry(key).or_default().push((bound, sample.value));
                } else if sample.name.ends_with("_count") {
                    counts.insert(key, sample.value);
                }
            }
            for (labels, mut buckets) in series {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                assert!(
                    buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{} {labels:?}: buckets shrink: {buckets:?}",
                    family.name
                );
                let (last_bound, last) = *buckets.last().unwrap();
                assert_eq!(last_bound, f64::INFINITY, "{} {labels:?}", family.name);
                assert_eq!(
                    Some(&last),
                    counts.get(&labels),
                    "{} {labels:?}: +Inf is not the count",
                    family.name
                );
            }
        }
    }
}
