"""The report: figures, tables and claim verdicts from the stage results and the published reference."""
