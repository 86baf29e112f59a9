"""The lists the tool keeps in its state: suppressions and subscribers, by hand and as CSV."""
