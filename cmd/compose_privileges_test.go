package cmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestComposePrivileges: the P-CSCF is the only service given a capability
// (NET_ADMIN, for its IPsec SAs over XFRM, TS 33.203) and the only one run
// as root; no service is privileged or shares the host's namespaces.
func TestComposePrivileges(t *testing.T) {
	svcs := readCompose(t)
	if len(svcs) < 6 {
		t.Fatalf("read %d services from docker-compose.yml", len(svcs))
	}
	for name, svc := range svcs {
		for _, k := range svc.keys {
			switch {
			case strings.HasPrefix(k, "privileged:"), strings.HasPrefix(k, "network_mode: host"),
				strings.HasPrefix(k, "pid:"), strings.HasPrefix(k, "ipc:"), strings.HasPrefix(k, "security_opt:"):
				t.Errorf("service %s: %q", name, k)
			case strings.HasPrefix(k, "cap_add:"):
				if name != "pcscf" || k != "cap_add: [NET_ADMIN]" {
					t.Errorf("service %s: %q (only the P-CSCF may add a capability, NET_ADMIN)", name, k)
				}
			case strings.HasPrefix(k, "user:"):
				if strings.Contains(k, `"0`) && name != "pcscf" {
					t.Errorf("service %s runs as root: %q", name, k)
				}
			}
		}
	}
	found := false
	for _, k := range svcs["pcscf"].keys {
		found = found || k == "cap_add: [NET_ADMIN]"
	}
	if !found {
		t.Error("the P-CSCF lacks cap_add: [NET_ADMIN]: its IPsec SAs need it")
	}
}

// TestGrafanaProvisioning: the dashboard provider reads the directory
// docker-compose.yml mounts the repository's dashboards at, the home
// dashboard is one of them, every panel's data source is a provisioned
// one, and panel ids are unique and panels do not overlap.
func TestGrafanaProvisioning(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join("..", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	compose := read("docker-compose.yml")
	mount := regexp.MustCompile(`- \./monitoring/grafana/dashboards:(\S+?)(:ro)?\n`).FindStringSubmatch(compose)
	if mount == nil {
		t.Fatal("docker-compose.yml does not mount monitoring/grafana/dashboards")
	}
	if !strings.Contains(compose, "- ./monitoring/grafana/provisioning:/etc/grafana/provisioning") {
		t.Error("docker-compose.yml does not mount the provisioning directory at /etc/grafana/provisioning")
	}
	provider := regexp.MustCompile(`(?m)^\s+path: (\S+)$`).FindStringSubmatch(read("monitoring/grafana/provisioning/dashboards/imscore.yml"))
	if provider == nil || provider[1] != mount[1] {
		t.Errorf("dashboard provider path %v, the compose file mounts the dashboards at %s", provider, mount[1])
	}
	home := regexp.MustCompile(`GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: (\S+)`).FindStringSubmatch(compose)
	if home == nil || home[1] != mount[1]+"/imscore.json" {
		t.Errorf("home dashboard %v is not %s/imscore.json", home, mount[1])
	}
	uids := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+uid: (\S+)$`).FindAllStringSubmatch(read("monitoring/grafana/provisioning/datasources/prometheus.yml"), -1) {
		uids[m[1]] = true
	}
	var dash struct {
		Panels []struct {
			ID         int    `json:"id"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(read("monitoring/grafana/dashboards/imscore.json")), &dash); err != nil {
		t.Fatal(err)
	}
	ids := map[int]string{}
	cells := map[[2]int]string{}
	for _, p := range dash.Panels {
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if !uids[p.Datasource.UID] {
			t.Errorf("panel %q: data source %q is not provisioned (%v)", p.Title, p.Datasource.UID, uids)
		}
		for _, tg := range p.Targets {
			if !uids[tg.Datasource.UID] || tg.Expr == "" {
				t.Errorf("panel %q: target data source %q, expr %q", p.Title, tg.Datasource.UID, tg.Expr)
			}
		}
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
	}
}
