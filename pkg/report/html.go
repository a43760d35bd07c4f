package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/go-echarts/go-echarts/v2/render"

	"github.com/llmbatch/llmbatch/pkg/money"
)

// echartsJS is Apache ECharts 5.6.0 (dist/echarts.min.js of the npm package echarts, Apache-2.0,
// see assets/ECHARTS-LICENSE and ECHARTS-NOTICE). It is inlined into every page so that a report
// opens offline: go-echarts would otherwise load it from its assets host.
//
//go:embed assets/echarts.min.js
var echartsJS string

// DataElementID is the id of the <script type="application/json"> element that holds the report's
// figures (the Report as JSON) in the HTML page, for tools and tests that read them back.
const DataElementID = "llmbatch-report-data"

// ChartIDs are the element ids of the page's charts, in page order.
var ChartIDs = []string{"throughput", "cost", "latency", "events"}

// HTML writes the report as one self-contained HTML page: the per-model table and four ECharts
// charts built with go-echarts, with the ECharts library inlined (no script, style or font is
// loaded from the network).
func (r *Report) HTML(w io.Writer) error {
	data, err := json.Marshal(r) // escapes <, > and &: safe inside a script element
	if err != nil {
		return fmt.Errorf("report: encode figures: %w", err)
	}
	var chartHTML strings.Builder
	for _, c := range r.charts() {
		s := c.RenderSnippet()
		chartHTML.WriteString("<section>" + s.Element + s.Script + "</section>\n")
	}
	return page.Execute(w, pageData{
		R: r, Title: "llmbatch report: " + r.Source, EChartsJS: template.JS(echartsJS),
		Charts: template.HTML(chartHTML.String()), Data: template.JS(data), DataID: DataElementID,
		Span: r.End.Sub(r.Start).Round(time.Millisecond).String(),
	})
}

// charts builds the four charts with go-echarts.
func (r *Report) charts() []render.Renderer {
	labels := make([]string, r.Buckets)
	for i := range labels {
		labels[i] = elapsed(time.Duration(i) * r.Step)
	}
	global := func(id, title, sub, yName string) []charts.GlobalOpts {
		return []charts.GlobalOpts{
			charts.WithInitializationOpts(opts.Initialization{ChartID: id, Width: "100%", Height: "380px", PageTitle: title}),
			charts.WithTitleOpts(opts.Title{Title: title, Subtitle: sub}),
			charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
			charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
			charts.WithGridOpts(opts.Grid{Top: "70", Bottom: "70", Left: "70", Right: "90"}),
			charts.WithXAxisOpts(opts.XAxis{Name: "elapsed", Type: "category"}),
			charts.WithYAxisOpts(opts.YAxis{Name: yName, Type: "value"}),
			charts.WithAnimation(false),
		}
	}
	step := r.Step.String()
	// Each lane keeps one colour across the charts: its row's index in the palette.
	colors := map[string]string{"cache": "#999999"}
	for i, m := range r.Models {
		colors[m.Lane()] = palette[i%len(palette)]
	}
	colored := func(name string) []charts.SeriesOpts {
		return []charts.SeriesOpts{charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)}),
			charts.WithLineStyleOpts(opts.LineStyle{Color: colors[name]}), charts.WithItemStyleOpts(opts.ItemStyle{Color: colors[name]})}
	}

	tp := charts.NewLine()
	tp.SetGlobalOptions(global("throughput", "OK throughput per lane",
		"ok requests per minute in "+step+" buckets; dashed: the lane's ceiling from its configured limits", "ok/min")...)
	tp.SetXAxis(labels)
	for _, s := range r.Throughput {
		color := colors[s.Name] // a lane and its ceiling share a colour
		tp.AddSeries(s.Name, lineData(s.Values), colored(s.Name)...)
		if s.Ceiling > 0 {
			c := make([]float64, r.Buckets)
			for i := range c {
				c[i] = s.Ceiling
			}
			tp.AddSeries("ceiling "+s.Name, lineData(c), charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)}),
				charts.WithLineStyleOpts(opts.LineStyle{Type: "dashed", Color: color}), charts.WithItemStyleOpts(opts.ItemStyle{Color: color}))
		}
	}

	cost := charts.NewLine()
	cost.SetGlobalOptions(global("cost", "Cumulative cost per model", fmt.Sprintf("total %s", money.Format(r.CostUSD)), "USD")...)
	cost.SetXAxis(labels)
	for _, s := range r.Cost {
		cost.AddSeries(s.Name, lineData(s.Values), colored(s.Name)...)
	}

	lat := charts.NewLine()
	lat.SetGlobalOptions(global("latency", "Latency percentiles",
		"latency_ms of the ok lines finished in each "+step+" bucket (nearest rank)", "ms")...)
	lat.SetXAxis(labels)
	for _, s := range r.Latency {
		lat.AddSeries(s.Name, lineData(s.Values), charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)}))
	}

	ev := charts.NewBar()
	sub := "per " + step + " bucket; left bar: 429s and failures by class, right bar: retries"
	if r.Logged == 0 {
		sub += " (429s and failed attempts need the attempt log: run -v)"
	}
	ev.SetGlobalOptions(global("events", "429s, retries and failures by class", sub, "count")...)
	ev.SetXAxis(labels)
	for _, s := range r.Events {
		stack := "failures"
		if s.Name == "retries" {
			stack = "retries"
		}
		ev.AddSeries(s.Name, barData(s.Values), charts.WithBarChartOpts(opts.BarChart{Stack: stack}))
	}
	return []render.Renderer{tp, cost, lat, ev}
}

// palette is ECharts' default series palette.
var palette = []string{"#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"}

func lineData(v []float64) []opts.LineData {
	out := make([]opts.LineData, len(v))
	for i, x := range v {
		if math.IsNaN(x) {
			out[i] = opts.LineData{Value: "-"} // ECharts' "no data" value: a gap in the line
		} else {
			out[i] = opts.LineData{Value: money.Round(x)}
		}
	}
	return out
}

func barData(v []float64) []opts.BarData {
	out := make([]opts.BarData, len(v))
	for i, x := range v {
		out[i] = opts.BarData{Value: x}
	}
	return out
}

type pageData struct {
	R         *Report
	Title     string
	Span      string
	EChartsJS template.JS
	Charts    template.HTML
	Data      template.JS
	DataID    string
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"usd": money.Format, "rate": rate, "logged": func(r *Report, n int) string { return r.logged(n) },
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 MST") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; }
p.totals { margin: 4px 0; }
table { border-collapse: collapse; margin: 16px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; white-space: nowrap; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
section { margin: 24px 0; }
.container { width: 100%; }
</style>
<script>{{.EChartsJS}}</script>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="totals">{{.R.Lines}} result lines: {{.R.OK}} ok, {{.R.Failed}} failed, {{.R.Cached}} from the cache; {{.R.Attempts}} attempts, {{.R.Retries}} retries.</p>
{{if .R.Buckets}}<p class="totals">From {{utc .R.Start}} to {{utc .R.End}} ({{.Span}}).</p>{{end}}
<p class="totals">Cost {{usd .R.CostUSD}}{{if .R.Cached}}; the cache hits saved {{usd .R.SavedUSD}}{{end}}.</p>
{{if .R.Untimed}}<p class="totals">{{.R.Untimed}} lines have no started_at/finished_at (written by an older llmbatch): in the table, not in the charts.</p>{{end}}
<table id="models">
<tr><th>provider</th><th>model</th><th>ok</th><th>failed</th><th>cached</th><th>input tokens</th><th>output tokens</th><th>cost</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>retries</th><th>429s</th><th>ok/min</th><th>ceiling/min</th></tr>
{{range .R.Models}}<tr><td>{{.Provider}}</td><td>{{.Model}}</td><td>{{.OK}}</td><td>{{.Failed}}</td><td>{{.Cached}}</td><td>{{.InputTokens}}</td><td>{{.OutputTokens}}</td><td>{{usd .CostUSD}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.P99}}</td><td>{{.Retries}}</td><td>{{logged $.R .RateLimited}}</td><td>{{rate .PerMinute}}</td><td>{{rate .Ceiling}}</td></tr>
{{end}}</table>
{{.Charts}}
<script type="application/json" id="{{.DataID}}">{{.Data}}</script>
</body>
</html>
`))

// DataFromHTML returns the figures embedded in a page that HTML wrote.
func DataFromHTML(page []byte) (*Report, error) {
	start := []byte(`<script type="application/json" id="` + DataElementID + `">`)
	i := bytes.Index(page, start)
	if i < 0 {
		return nil, fmt.Errorf("report: the page has no %s element", DataElementID)
	}
	rest := page[i+len(start):]
	j := bytes.Index(rest, []byte("</script>"))
	if j < 0 {
		return nil, fmt.Errorf("report: the %s element is not closed", DataElementID)
	}
	var r Report
	if err := json.Unmarshal(rest[:j], &r); err != nil {
		return nil, fmt.Errorf("report: the %s element: %w", DataElementID, err)
	}
	return &r, nil
}
