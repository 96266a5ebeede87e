package store

// Surveys runs the queries of the surveys and respondents tables.
type Surveys interface{}
