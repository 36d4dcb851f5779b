package mpi

import "testing"

func TestLaunched(t *testing.T) {
	clear := func() {
		for _, v := range append(launcherVars, "GOLORA_MPI") {
			t.Setenv(v, "")
		}
	}
	cases := []struct {
		name, key, value string
		want             bool
	}{
		{"plain process", "", "", false},
		{"mpirun", "OMPI_COMM_WORLD_SIZE", "2", true},
		{"srun --mpi=pmix", "PMIX_RANK", "0", true},
		{"hydra or pmi2", "PMI_RANK", "1", true},
		{"forced on", "GOLORA_MPI", "1", true},
		{"forced off", "GOLORA_MPI", "0", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clear()
			if c.key != "" {
				t.Setenv(c.key, c.value)
			}
			if got := Launched(); got != c.want {
				t.Fatalf("Launched() = %v, want %v", got, c.want)
			}
		})
	}
	t.Run("forced off beats a launcher", func(t *testing.T) {
		clear()
		t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
		t.Setenv("GOLORA_MPI", "0")
		if Launched() {
			t.Fatal("GOLORA_MPI=0 did not win")
		}
	})
}

func TestThreadLevelNames(t *testing.T) {
	for l, want := range map[ThreadLevel]string{ThreadSingle: "MPI_THREAD_SINGLE", ThreadFunneled: "MPI_THREAD_FUNNELED",
		ThreadSerialized: "MPI_THREAD_SERIALIZED", ThreadMultiple: "MPI_THREAD_MULTIPLE", 7: "ThreadLevel(7)"} {
		if got := l.String(); got != want {
			t.Errorf("%d: %q, want %q", int(l), got, want)
		}
	}
}
