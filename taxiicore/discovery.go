package taxiicore

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

type discoveryResource struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Contact     string   `json:"contact,omitempty"`
	Default     string   `json:"default,omitempty"`
	APIRoots    []string `json:"api_roots,omitempty"`
}

type apiRootResource struct {
	Title            string   `json:"title"`
	Description      string   `json:"description,omitempty"`
	Versions         []string `json:"versions"`
	MaxContentLength int64    `json:"max_content_length"`
}

// getDiscovery answers /taxii2/ from Postgres, so replicas agree. Roots are
// listed as relative URLs (DISC-04).
func (s *Server) getDiscovery(w http.ResponseWriter, r *http.Request) {
	d := discoveryResource{Title: "Taxiway"}
	var def *string
	err := s.pool.QueryRow(r.Context(), `SELECT title, description, contact, default_root FROM taxii_settings`).
		Scan(&d.Title, &d.Description, &d.Contact, &def)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		s.internalError(w, r, "reading discovery settings", err)
		return
	}
	if def != nil {
		d.Default = "/" + *def + "/"
	}
	names, err := listRootNames(r.Context(), s.pool)
	if err != nil {
		s.internalError(w, r, "listing API roots", err)
		return
	}
	for _, n := range names {
		d.APIRoots = append(d.APIRoots, "/"+n+"/")
	}
	writeJSON(w, http.StatusOK, d)
}

func listRootNames(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT name FROM taxii_api_roots ORDER BY name`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing API roots: %w", err)
	}
	return names, nil
}

func (s *Server) getAPIRoot(w http.ResponseWriter, r *http.Request, rt route) {
	res := apiRootResource{Versions: []string{taxiierror.MediaType}}
	err := s.pool.QueryRow(r.Context(), `SELECT title, description, max_content_length FROM taxii_api_roots WHERE name = $1`, rt.root).
		Scan(&res.Title, &res.Description, &res.MaxContentLength)
	if errors.Is(err, pgx.ErrNoRows) {
		taxiierror.Write(w, http.StatusNotFound, "Not found", "no such API root")
		return
	}
	if err != nil {
		s.internalError(w, r, "reading the API root", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) getCollections(w http.ResponseWriter, r *http.Request, rt route, id identity) {
	var exists bool
	if err := s.pool.QueryRow(r.Context(), `SELECT EXISTS (SELECT 1 FROM taxii_api_roots WHERE name = $1)`, rt.root).Scan(&exists); err != nil {
		s.internalError(w, r, "reading the API root", err)
		return
	}
	if !exists {
		taxiierror.Write(w, http.StatusNotFound, "Not found", "no such API root")
		return
	}
	cols, err := s.visibleCollections(r.Context(), rt.root, id)
	if err != nil {
		s.internalError(w, r, "listing collections", err)
		return
	}
	var out struct {
		Collections []collectionResource `json:"collections,omitempty"`
	}
	for _, c := range cols {
		out.Collections = append(out.Collections, c.resource())
	}
	writeJSON(w, http.StatusOK, out)
}
