package localcluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one process of the cluster, as recorded in the state file so
// that a later `berth-localcluster down` (another process) can stop it.
type Proc struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// Binary is the absolute path of the executable; it is compared with
	// /proc/<pid>/exe before any signal is sent, so that a recycled PID
	// never gets signalled.
	Binary string `json:"binary"`
	Log    string `json:"log"`
}

// State is the content of <dir>/state.json.
type State struct {
	// Procs in start order; they are stopped in reverse order.
	Procs []Proc `json:"procs"`
	// Server is the API server URL.
	Server string `json:"server"`
	// Kubeconfig is the admin kubeconfig.
	Kubeconfig string `json:"kubeconfig"`
	// SimkubeletURL is the control endpoint of the simulated kubelets.
	SimkubeletURL string `json:"simkubeletURL,omitempty"`
	// Nodes are the simulated nodes' names.
	Nodes []string `json:"nodes,omitempty"`
}

const stateFile = "state.json"

// ReadState reads dir's state file. It returns an error satisfying
// errors.Is(err, os.ErrNotExist) when no cluster was started there.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

// procs runs and tracks the cluster's processes.
type procs struct {
	dir string
	mu  sync.Mutex
	st  State
	// exited is closed per PID when a process started by this process
	// exits (it is reaped by cmd.Wait).
	exited map[int]chan struct{}
}

func (p *procs) save() error {
	b, err := json.MarshalIndent(&p.st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(p.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(p.dir, stateFile))
}

func (p *procs) update(f func(*State)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.st)
	return p.save()
}

// start runs binary with args in its own process group (so that Ctrl-C in
// the terminal reaches only the driver, which then stops the cluster in
// order), stdout and stderr appended to <dir>/logs/<name>.log, and records
// it in the state file before returning.
func (p *procs) start(name, binary string, args ...string) (*Proc, error) {
	abs, err := filepath.Abs(binary)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("%s: %w (run `make local-build`)", name, err)
	}
	logPath := filepath.Join(p.dir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "### %s %s\n", abs, strings.Join(args, " "))
	cmd := exec.Command(abs, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	proc := Proc{Name: name, PID: cmd.Process.Pid, Binary: abs, Log: logPath}
	done := make(chan struct{})
	p.mu.Lock()
	if p.exited == nil {
		p.exited = map[int]chan struct{}{}
	}
	p.exited[proc.PID] = done
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := p.update(func(s *State) { s.Procs = append(s.Procs, proc) }); err != nil {
		return nil, err
	}
	return &proc, nil
}

// running reports whether proc is still alive (and still the process that
// was started: same executable).
func (p *procs) running(proc Proc) bool {
	p.mu.Lock()
	done, ours := p.exited[proc.PID]
	p.mu.Unlock()
	if ours {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	return alive(proc)
}

// alive checks a process this process did not start (e.g. `down` after
// `up` ran in another process).
func alive(proc Proc) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", proc.PID))
	if err != nil {
		return false
	}
	if strings.TrimSuffix(exe, " (deleted)") != proc.Binary {
		return false // the PID was recycled
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", proc.PID))
	if err != nil {
		return false
	}
	// Field 3 is the state; a zombie has exited but was not reaped yet.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// stopAll stops the recorded processes in reverse start order: SIGTERM to
// the process group, SIGKILL after grace. Only processes whose executable
// still matches the record are signalled.
func (p *procs) stopAll(grace time.Duration) error {
	p.mu.Lock()
	list := append([]Proc(nil), p.st.Procs...)
	p.mu.Unlock()
	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		proc := list[i]
		if err := p.stop(proc, grace); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.update(func(s *State) {
			kept := s.Procs[:0]
			for _, q := range s.Procs {
				if q.PID != proc.PID {
					kept = append(kept, q)
				}
			}
			s.Procs = kept
		}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *procs) stop(proc Proc, grace time.Duration) error {
	if !p.running(proc) {
		return nil
	}
	// The process leads its own group (Setpgid), so -PID reaches it and
	// anything it started.
	_ = syscall.Kill(-proc.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.running(proc) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-proc.PID, syscall.SIGKILL)
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if !p.running(proc) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s (pid %d) did not exit", proc.Name, proc.PID)
}

// tail returns the last n lines of a log file, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// Alive reports whether a recorded process is still running (and is still
// the recorded executable).
func Alive(p Proc) bool { return alive(p) }
