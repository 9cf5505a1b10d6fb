"""A simulated e-commerce customer-service centre and the scenarios it plays
(``watchfloor simulate``): live into a collector or into a JSONL file for replay."""
