"""Reports of runs: the report object and its formats (Markdown, HTML, JUnit, JSON), charts, tool figures, trace
links, the CI review comment, and text made safe to show."""
