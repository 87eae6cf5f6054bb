# IMS core: build, test, fuzz, benchmarks and the loopback lab.
GO        ?= go
BINARIES  := pcscf icscf scscf hss imsctl imsue
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/imscore/imscore/pkg/version.Version=$(VERSION)
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ims?sslmode=disable
FUZZTIME  ?= 20s

.PHONY: all build test test-short test-sipgo-fork test-ipsec vet fmt fuzz bench clean
all: build

build: $(addprefix bin/,$(BINARIES))

bin/%: FORCE
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/$*

FORCE:

## test: the one test command (CI runs it): vet, gofmt check, race-enabled tests.
test: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-ed:"; echo "$$unformatted"; exit 1; fi
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory test-sipgo-fork

## test-sipgo-fork: upstream's own tests of our sipgo fork (third_party/sipgo/FORK.md),
## plain and with -race (two upstream tests with races of their own skipped there).
test-sipgo-fork:
	cd third_party/sipgo/testdata && [ -f certs/client.crt ] || bash generate_certs.sh >/dev/null 2>&1
	cd third_party/sipgo && $(GO) test -count=1 ./... && \
	  $(GO) test -race -count=1 -skip 'TestTransportLayerClientConnection(No)?Reuse' ./...

test-short:
	$(GO) test -short -count=1 ./...

## test-ipsec: the P-CSCF's IPsec scenarios in a qemu VM whose kernel has ESP (TCG emulation,
## e2e/ipsecvm; make test runs them too). IPSECVM_RUN=<regexp> picks scenarios, IPSECVM_KEEP=1
## keeps the work directory (console log, the VM's /out with every process's log). A missing qemu,
## kernel or busybox fails here (IPSECVM_REQUIRE=1, also set by CI); plain make test skips then.
test-ipsec:
	IPSECVM_REQUIRE=1 $(GO) test -count=1 -timeout 20m -run '^TestIPsec$$' -v ./e2e/ipsecvm/

vet:
	$(GO) vet ./...
	$(GO) vet -tags ipsecvm ./e2e/ipsecvm/

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: a short run of every fuzz target (FUZZTIME each).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: every Go benchmark.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin .lab

## lab: the loopback lab without Docker (logs and PID files in .lab/).
.PHONY: lab lab-down lab-status
lab:
	scripts/lab.sh up
lab-down:
	scripts/lab.sh down
lab-status:
	scripts/lab.sh status

## bench-hss: Cx load benchmark of the HSS (MAR+SAR+UAR, 8 clients, PostgreSQL at DATABASE_URL).
.PHONY: bench-hss
bench-hss:
	$(GO) test -run '^$$' -bench '^BenchmarkCx$$' -benchtime 5000x -benchmem ./hss/

## bench-hss-register: the HSS's and PostgreSQL's CPU per first AKA registration (UAR, MAR,
## UAR, SAR of fresh subscribers over Diameter), also in a registration storm on a young system.
.PHONY: bench-hss-register
bench-hss-register:
	$(GO) test -run '^$$' -bench 'CxFirstRegistration|CxRegistrationStorm' -benchtime 4000x ./hss/

## bench-batch: what PostgreSQL spends per row of the Cx hot path's kinds of statement (durable
## SQN advance, durable S-CSCF assignment upsert, key look-up), one row per statement or batched
## (docs/adr/0002-registration-capacity.md).
.PHONY: bench-batch
bench-batch:
	$(GO) test -run '^$$' -bench 'BatchedStatements' -benchtime 20000x ./hss/store/

## bench-sip-floor: CPU per REGISTER transaction of a bare sipgo UAS and of a pkg/sipproxy
## forwarding proxy (no IMS logic) under sipp load, the floor under the I-CSCF and S-CSCF
## (docs/adr/0002-registration-capacity.md).
.PHONY: bench-sip-floor
bench-sip-floor:
	BENCH_SIP_FLOOR=1 $(GO) test -count=1 -run '^TestBenchSIPFloor$$' -v -timeout 10m ./pkg/sipproxy/ | grep -A8 '^bench-sip-floor:'

## bench-register: end-to-end AKA registrations with sipp through I-CSCF → S-CSCF → HSS
## (real binaries, throw-away PostgreSQL database at DATABASE_URL).
## BENCH_REGISTER_N subscribers offered at BENCH_REGISTER_RATE REGISTER flows/s: offered above
## the 1,000 reg/s target, so that the completed rate measures the capacity.
BENCH_REGISTER_N    ?= 15000
BENCH_REGISTER_RATE ?= 1200
.PHONY: bench-register
bench-register:
	BENCH_REGISTER_N=$(BENCH_REGISTER_N) BENCH_REGISTER_RATE=$(BENCH_REGISTER_RATE) \
	  $(GO) test -count=1 -run '^TestBenchRegister$$' -v -timeout 30m ./e2e/ | grep -A18 '^bench-register:'

## bench-register-pcscf: the same, entering through a P-CSCF (no IPsec, Rx off):
## sipp → P-CSCF → I-CSCF → S-CSCF → HSS.
.PHONY: bench-register-pcscf
bench-register-pcscf:
	BENCH_VIA_PCSCF=1 BENCH_REGISTER_N=$(BENCH_REGISTER_N) BENCH_REGISTER_RATE=$(BENCH_REGISTER_RATE) \
	  $(GO) test -count=1 -run '^TestBenchRegister$$' -v -timeout 30m ./e2e/ | grep -A18 '^bench-register:'

## bench-call: sipp calls A→B (INVITE/180/200/ACK/BYE) through S-CSCF (orig) → I-CSCF →
## S-CSCF (term), registered users, no AS (real binaries, throw-away PostgreSQL at DATABASE_URL).
## BENCH_CALL_N calls offered at BENCH_CALL_RATE calls/s.
BENCH_CALL_N    ?= 5000
BENCH_CALL_RATE ?= 500
.PHONY: bench-call
bench-call:
	BENCH_CALL_N=$(BENCH_CALL_N) BENCH_CALL_RATE=$(BENCH_CALL_RATE) \
	  $(GO) test -count=1 -run '^TestBenchCall$$' -v -timeout 30m ./e2e/ | grep -A10 '^bench-call:'

## bench-call-pcscf: the same with both users registered (AKA) through a P-CSCF
## (no IPsec, Rx off): sipp A → P-CSCF → S-CSCF → I-CSCF → S-CSCF → P-CSCF → sipp B.
.PHONY: bench-call-pcscf
bench-call-pcscf:
	BENCH_VIA_PCSCF=1 BENCH_CALL_N=$(BENCH_CALL_N) BENCH_CALL_RATE=$(BENCH_CALL_RATE) \
	  $(GO) test -count=1 -run '^TestBenchCall$$' -v -timeout 30m ./e2e/ | grep -A11 '^bench-call:'

## bench-import: imsctl subscriber import of BENCH_IMPORT_N AKA subscribers from CSV (COPY into a
## staging table, set-based inserts, one transaction) into a throw-away database at DATABASE_URL.
BENCH_IMPORT_N ?= 1000000
.PHONY: bench-import
bench-import:
	BENCH_IMPORT_N=$(BENCH_IMPORT_N) $(GO) test -count=1 -run '^TestBenchImport$$' -v -timeout 20m ./hss/provision/ | grep '^bench-import:'

## bench-load: sipp load steps through P-CSCF → I-CSCF → S-CSCF → HSS (real binaries, throw-away
## database at DATABASE_URL), counted from sipp's side; fails when a REGISTER or INVITE transaction
## got no final answer. LOAD_STEPS: KIND:RATE,... (reg, sharedreg, sharedcall, call; e2e/load_test.go);
## LOAD_STEP_SECONDS each (default 20). Prints CPU ms and Go heap KB allocated per completed flow of
## each process. BENCH_PROFILE_DIR=DIR writes CPU and allocation profiles of every process per step
## (DIR/KIND-RATE/NAME.pprof, NAME.allocs.pprof); BENCH_PCSCF_ARGS, BENCH_ICSCF_ARGS, BENCH_HSS_ARGS add flags
## (e.g. BENCH_PCSCF_ARGS=--persist=false). Not part of make test.
LOAD_STEPS ?= reg:300,reg:500,sharedreg:200,sharedcall:200,call:350
.PHONY: bench-load
bench-load:
	LOAD_STEPS='$(LOAD_STEPS)' $(GO) test -count=1 -run '^TestLoad$$' -v -timeout 60m ./e2e/ | sed -n '/^bench-load/,/^[-=]\{3\} /p'

## bench-compare: the bench-load steps (COMPARE_STEPS) alternated between our chain and a Kamailio 5.6
## IMS chain (P-CSCF e2e/testdata/kamailio/pcscf.cfg, the interop I-CSCF and S-CSCF) on the same HSS
## and database, COMPARE_ROUNDS rounds (the order swapped each round); prints the table of
## docs/performance.md. Needs sipp and the Debian packages kamailio, kamailio-ims-modules,
## kamailio-presence-modules. Not part of make test.
COMPARE_STEPS  ?= reg:150,reg:200,reg:250,reg:300,sharedreg:200,sharedreg:300,sharedcall:200,sharedcall:350,call:350,call:500
COMPARE_ROUNDS ?= 1
.PHONY: bench-compare
bench-compare:
	COMPARE_STEPS='$(COMPARE_STEPS)' COMPARE_ROUNDS='$(COMPARE_ROUNDS)' $(GO) test -count=1 -run '^TestCompare$$' -v -timeout 120m ./e2e/ | sed -n '/^bench-compare/,/^[-=]\{3\} /p'

## image: the container image of docker-compose.yml, its version label and --version from git.
.PHONY: image
image:
	IMSCORE_VERSION=$(VERSION) docker compose build

## test-compose: the docker compose lab for real (test/compose/run.sh): its own dockerd in a
## network namespace, locally built base images (cached in /var/cache/imscore-compose), UEs
## (sipp, baresip) on another "host" reaching it through the published ports, restarts,
## down/up, --profile multi-scscf and monitoring, JSON logs. Needs root; CI runs it.
.PHONY: test-compose
test-compose:
	VERSION=$(VERSION) bash test/compose/run.sh

## bench-junk: RSS and log volume of the P-CSCF, I-CSCF and S-CSCF while each takes BENCH_JUNK_N
## mutated SIP requests over UDP at BENCH_JUNK_RATE/s (issue 22); fails when a process's peak RSS
## reaches 2x its idle RSS or it logs more than 32 bytes per junk datagram.
BENCH_JUNK_N    ?= 20000
BENCH_JUNK_RATE ?= 1750
.PHONY: bench-junk
bench-junk:
	BENCH_JUNK=1 BENCH_JUNK_N=$(BENCH_JUNK_N) BENCH_JUNK_RATE=$(BENCH_JUNK_RATE) \
	  $(GO) test -count=1 -run '^TestBenchJunkRSS$$' -v -timeout 10m ./e2e/ | grep -E -A4 '^bench-junk:|^--- FAIL|junk_bench_test.go'
