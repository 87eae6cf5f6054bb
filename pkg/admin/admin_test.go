package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	s := New(nil)
	var peerUp atomic.Bool
	s.AddReadyCheck("diameter", func(context.Context) error {
		if !peerUp.Load() {
			return errors.New("peer hss.example down")
		}
		return nil
	})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ims_test_total", Help: "test"})
	s.Registry.MustRegister(c)
	c.Add(3)
	s.HandleJSON("/status/contacts", func(context.Context) (any, error) {
		return map[string]int{"contacts": 2}, nil
	})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr()

	if code, body := get(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "peer hss.example down") {
		t.Errorf("/readyz while down = %d %q", code, body)
	}
	peerUp.Store(true)
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, `"start-up":"starting"`) {
		t.Errorf("/readyz before MarkStarted = %d %q", code, body)
	}
	s.MarkStarted()
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz while up = %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "ims_test_total 3") {
		t.Errorf("/metrics = %d, missing counter", code)
	}
	if code, body := get(t, base+"/status/contacts"); code != 200 || !strings.Contains(body, `"contacts": 2`) {
		t.Errorf("/status/contacts = %d %q", code, body)
	}
}
