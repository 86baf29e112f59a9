"""The subscriber list: a CSV file read, validated, deduplicated and streamed; shards."""
