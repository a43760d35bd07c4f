package cmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/llmbatch/llmbatch/pkg/report"
)

// chromiumPath finds a headless-capable Chromium. Without one the browser check is skipped on a
// developer's machine and fails in CI (CI is set), where .ci/run installs the Debian package.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI must check the report in a browser: apt-get install -y chromium")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser check of the report")
	return ""
}

// checkInBrowser opens the HTML report in headless Chromium with the network cut off, fails on any
// console error, uncaught exception or request that leaves the file, checks that every chart was
// drawn with the report's series, and saves a screenshot to shot.
func checkInBrowser(t *testing.T, page, shot string) {
	t.Helper()
	bin := chromiumPath(t)
	abs, err := filepath.Abs(page)
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 2300), chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	var mu sync.Mutex
	var problems []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "uncaught exception: "+e.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console "+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *network.EventRequestWillBeSent:
			if u := e.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
				problems = append(problems, "network request: "+u)
			}
		}
	})
	var series map[string]int
	var png []byte
	err = chromedp.Run(ctx,
		network.Enable(),
		runtime.Enable(),
		network.EmulateNetworkConditions(true, 0, 0, 0), // offline: the page must not need the network
		chromedp.Navigate("file://"+abs),
		chromedp.WaitReady("#events canvas", chromedp.ByQuery),
		chromedp.Evaluate(`(() => {
			const out = {};
			for (const id of `+jsList(report.ChartIDs)+`) {
				const chart = echarts.getInstanceByDom(document.getElementById(id));
				out[id] = chart ? chart.getOption().series.filter(s => s.data && s.data.length > 0).length : -1;
			}
			return out;
		})()`, &series),
		chromedp.FullScreenshot(&png, 100), // quality 100: PNG
	)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("in the browser: %s", p)
	}
	for _, id := range report.ChartIDs {
		if series[id] <= 0 {
			t.Errorf("chart %s: %d series with data drawn", id, series[id])
		}
	}
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("charts drawn (series with data): %v; screenshot %s (%d bytes)", series, shot, len(png))
}

func jsList(ss []string) string {
	return `["` + strings.Join(ss, `","`) + `"]`
}
