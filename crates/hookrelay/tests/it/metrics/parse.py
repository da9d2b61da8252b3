"""Reads a Prometheus text scrape on stdin with the official client's parser and prints
its families as JSON, for the Rust tests: {"families": [{"name", "type", "samples":
[{"name", "labels", "value"}]}]}. With the argument `yaml FILE`, prints FILE's YAML as
JSON instead."""
import json
import sys

if len(sys.argv) == 3 and sys.argv[1] == "yaml":
    import yaml

    with open(sys.argv[2]) as f:
        print(json.dumps(yaml.safe_load(f)))
    sys.exit(0)

from prometheus_client.parser import text_string_to_metric_families

families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append(
        {
            "name": family.name,
            "type": family.type,
            "samples": [
                {"name": s.name, "labels": s.labels, "value": s.value}
                for s in family.samples
            ],
        }
    )
print(json.dumps({"families": families}))
