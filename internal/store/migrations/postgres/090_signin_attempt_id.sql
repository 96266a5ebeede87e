-- Each sign-in attempt's rows carry a random id, so an attempt that succeeds (or whose
-- password was never checked) gives back exactly its own row of the per-address count, even
-- when other attempts from the same address were recorded in the same microsecond.
ALTER TABLE signin_failures ADD COLUMN attempt TEXT;
