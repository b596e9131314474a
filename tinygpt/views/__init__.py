"""Every way tinygpt shows an analysis: the terminal (attention_view.py, put together from
attention_map.py, head_tables.py and head_explanation.py; trajectory_text.py; interpret_text.py),
self-contained HTML pages (attention_html.py, interpret_html.py, page.py), PNG and SVG figures
(attention_figures.py, interpret_figures.py, trajectory_figure.py, plot.py, drawn with font.py and
png.py, no plotting library), and report files (attention_files.py). Views take the analysis
package's report objects and never compute what they show."""
