"""The benchmark harness: workload generators and measurements."""
