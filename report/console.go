package report

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// Console shares a terminal between log lines and the progress bars: a log
// line first erases the bars, is written, and the bars are drawn again
// below it, so neither garbles the other. It is an io.Writer for the logger.
type Console struct {
	mu    sync.Mutex
	w     io.Writer
	bars  []byte // the current drawing, without cursor movement
	lines int    // how many lines it occupies
}

// NewConsole wraps a terminal.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Write writes a log line above the bars.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.erase()
	n, err := c.w.Write(p)
	if err == nil {
		_, err = c.w.Write(c.bars)
	}
	return n, err
}

// draw replaces the bars.
func (c *Console) draw(bars []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.erase()
	c.bars = append(c.bars[:0], bars...)
	c.lines = bytes.Count(bars, []byte{'\n'})
	_, _ = c.w.Write(c.bars)
}

// erase moves the cursor to the top of the bars and clears to the end of
// the screen.
func (c *Console) erase() {
	if c.lines > 0 {
		fmt.Fprintf(c.w, "\x1b[%dA\x1b[J", c.lines)
	}
}
