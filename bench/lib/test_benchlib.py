"""Tests of the benchmark helpers that need no KVM: smaps accounting (synthetic and a live
anonymous mapping) and the JSON the drivers print. Run: /usr/bin/python3 bench/lib/test_benchlib.py"""
import json
import mmap
import os
import sys
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import density  # noqa: E402
import memory_overhead  # noqa: E402

# A cloister-monitor-like smaps: binary, heap, and 256 MiB of private hugetlb (Rss 0).
OURS = """\
55d0a0000000-55d0a0040000 r-xp 00000000 08:01 123 /build/src/vmm/cloister-monitor
Size:                256 kB
Rss:                 200 kB
Pss:                 200 kB
Private_Hugetlb:       0 kB
55d0a1000000-55d0a1200000 rw-p 00000000 00:00 0                          [heap]
Size:               2048 kB
Rss:                1024 kB
Pss:                1024 kB
7f0000000000-7f0010000000 rw-p 00000000 00:0f 1000 /anon_hugepage (deleted)
Size:             262144 kB
KernelPageSize:     2048 kB
Rss:                   0 kB
Pss:                   0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:  262144 kB
"""

# A QEMU-like smaps: 256 MiB + 2 MiB anonymous guest RAM, 40 MiB of it touched; a malloc arena.
QEMU = """\
560000000000-560000800000 r-xp 00000000 08:01 99 /usr/bin/qemu-system-x86_64
Size:               8192 kB
Rss:                6000 kB
Pss:                6000 kB
7f1000000000-7f1010200000 rw-p 00000000 00:00 0
Size:             264192 kB
Rss:               40960 kB
Pss:               40960 kB
Private_Hugetlb:       0 kB
7f2000000000-7f2004000000 rw-p 00000000 00:00 0
Size:              65536 kB
Rss:                3000 kB
Pss:                3000 kB
"""


class Smaps(unittest.TestCase):
    def test_ours_hugetlb_guest_ram_is_not_in_rss(self):
        m = benchlib.vmm_memory(benchlib.parse_smaps(OURS), 256)
        self.assertEqual(m["overhead_kib"], 1224)
        self.assertEqual(m["guest_rss_kib"], 0)
        self.assertEqual(m["guest_hugetlb_kib"], 256 * 1024)

    def test_qemu_touched_guest_pages_are_subtracted(self):
        m = benchlib.vmm_memory(benchlib.parse_smaps(QEMU), 256)
        self.assertEqual(m["rss_kib"], 6000 + 40960 + 3000)
        self.assertEqual(m["overhead_kib"], 9000)  # the 64 MiB arena is not guest RAM

    def test_ours_guest_ram_in_several_hugetlb_regions(self):
        # run-enclave's enclave process: 128 + 64 + 64 MiB regions make the 256 MiB guest
        two = OURS.replace("7f0000000000-7f0010000000", "7f0000000000-7f0008000000").replace(
            "Size:             262144 kB", "Size:             131072 kB").replace(
            "Private_Hugetlb:  262144 kB", "Private_Hugetlb:  131072 kB")
        quarter = ("7f3000000000-7f3004000000 rw-p 00000000 00:0f 1001 /anon_hugepage (deleted)\n"
                   "Size:              65536 kB\nRss:                   0 kB\n"
                   "Private_Hugetlb:   65536 kB\n")
        m = benchlib.vmm_memory(benchlib.parse_smaps(two + quarter + quarter), 256)
        self.assertEqual(m["overhead_kib"], 1224)
        self.assertEqual(m["guest_hugetlb_kib"], 256 * 1024)
        with self.assertRaises(ValueError):  # 192 MiB is not the guest's 256
            benchlib.vmm_memory(benchlib.parse_smaps(two + quarter), 256)

    def test_no_guest_mapping_is_an_error(self):
        with self.assertRaises(ValueError):
            benchlib.vmm_memory(benchlib.parse_smaps(QEMU), 128)

    def test_live_anonymous_mapping(self):
        m = mmap.mmap(-1, 64 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        for off in range(0, 16 << 20, 4096):
            m[off] = 1
        got = benchlib.measure(os.getpid(), 64)
        self.assertGreaterEqual(got["guest_rss_kib"], 16 * 1024)
        self.assertLess(got["guest_rss_kib"], 20 * 1024)
        self.assertEqual(got["rss_kib"] - got["guest_rss_kib"], got["overhead_kib"])
        self.assertIsNotNone(got["VmRSS_kib"])
        m.close()


def sample(kib):
    return {"overhead_kib": kib, "overhead_pss_kib": kib, "rss_kib": kib, "guest_rss_kib": 0,
            "guest_hugetlb_kib": 0, "hugetlb_kib": 0}


REQUIRED = ("name", "ours", "theirs", "unit", "ratio", "goal", "better", "machine")


class Json(unittest.TestCase):
    def test_memory_overhead_json(self):
        rounds = [{"ours": {"idle": sample(2048), "load": sample(3072), "mibs": 9.0},
                   "theirs": {"idle": sample(10240), "load": sample(12288), "mibs": 11.0}}] * 3
        args = types.SimpleNamespace(size=32, memory=256)
        r = json.loads(json.dumps(memory_overhead.result(rounds, args, "m", [1, 2, 3])))
        for k in REQUIRED:
            self.assertIn(k, r)
        self.assertEqual((r["ours"], r["theirs"], r["ratio"]), (3.0, 12.0, 0.25))
        self.assertEqual(r["idle"]["ours"], 2.0)
        self.assertEqual(r["goal_met"], {"idle": True, "load": True})
        self.assertNotIn("ours_nitro_cli", r)

    def test_memory_overhead_json_with_the_nsm_daemon(self):
        daemon = {"VmRSS": 5120, "RssAnon": 1024, "RssFile": 4096}
        rounds = [{"ours": {"idle": sample(2048), "load": sample(3072), "mibs": 9.0},
                   "theirs": {"idle": sample(10240), "load": sample(12288), "mibs": 11.0},
                   "nitro": {"idle": sample(3072), "load": sample(3584), "mibs": 8.0,
                             "nsmd": daemon}}] * 3
        args = types.SimpleNamespace(size=32, memory=256)
        r = json.loads(json.dumps(memory_overhead.result(rounds, args, "m", [1, 2, 3])))
        n = r["ours_nitro_cli"]
        self.assertEqual((n["load"], n["idle"]), (3.5, 3.0))
        self.assertEqual(n["nsm_daemon"]["rss_mib"], 5.0)
        self.assertEqual(n["nsm_daemon"]["enclave_process_plus_daemon_mib"], 8.5)

    def test_density_json(self):
        def side(t, ok=True):
            return {"all_booted_s": t, "boot_s": [t], "failed": {}, "terminate_s": 1.0,
                    "exit_codes": [14], "host_memory_mib": 1.0,
                    "checks": {"all_booted": ok, "hugepages_returned": True}}
        rounds = [{"ours": side(10.0), "theirs": side(20.0)},
                  {"ours": side(12.0), "theirs": side(18.0)},
                  {"ours": side(None, False), "theirs": side(22.0)}]
        a = types.SimpleNamespace(n=8, memory=128)
        r = json.loads(json.dumps(density.result(rounds, a, [1, 2], "m", [1, 2, 3])))
        for k in REQUIRED:
            self.assertIn(k, r)
        self.assertEqual((r["ours"], r["theirs"], r["ratio"]), (11.0, 20.0, 0.55))
        self.assertFalse(r["checks_passed"])
        self.assertEqual(r["runs"]["ours"], [10.0, 12.0, None])


if __name__ == "__main__":
    unittest.main()
