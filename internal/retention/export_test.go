package retention

// SetAfterBatch sets a hook run after every batch, before the pause.
func (p *Purger) SetAfterBatch(f func()) { p.afterBatch = f }
