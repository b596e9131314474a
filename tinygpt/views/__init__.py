"""Every way tinygpt shows an analysis: terminal tables and maps (rich), self-contained HTML
pages, and PNG and SVG figures drawn without a plotting library. Views take the analysis
package's report objects and never compute what they show."""
