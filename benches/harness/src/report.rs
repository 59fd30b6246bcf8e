//! The Markdown tables (printed and written to `target/bench/*.md`).

use std::fmt::Write as _;

use crate::bench::{
    compare, human_size, median, CaseResult, Check, Meta, Results, ServerBench, Who,
};
use crate::serve::Store;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or("–".into(), |r| format!("{r:.2}"))
}

fn meta_lines(meta: &Meta) -> String {
    format!(
        "Machine: {} cores, {}; load average {} before, {} after. Commit {}. Seed {:#x}.\n\
         Python SDK: {}. CLI: {}.\n",
        meta.cores,
        meta.kernel,
        meta.load_before,
        meta.load_after,
        meta.commit,
        meta.seed,
        match &meta.python {
            Ok(p) => p.clone(),
            Err(e) => format!("not run ({e})"),
        },
        match &meta.cli {
            Ok(p) => p.clone(),
            Err(e) => format!("not run ({e})"),
        },
    )
}

fn main_table(out: &mut String, results: &[CaseResult], phase: &str, store: &str) {
    let rows: Vec<&CaseResult> = results
        .iter()
        .filter(|r| r.phase == phase && r.store == store)
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "| runner | part / threads | median GiB/s | min–max | peak RSS MiB | CPU s/GiB | × limit |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let setup = format!("{} / {}", human_size(r.part_size), r.concurrency);
        match &r.summary {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "| {} | {setup} | {:.2} | {:.2}–{:.2} | {:.0} | {:.2} | {} |",
                    r.label,
                    s.median_gib_s,
                    s.min_gib_s,
                    s.max_gib_s,
                    s.peak_rss_mib,
                    s.cpu_s_per_gib,
                    fmt_ratio(s.ratio_to_limit)
                );
            }
            None => {
                let why = r.errors.first().map_or("no run", String::as_str);
                let _ = writeln!(out, "| {} | {setup} | – | – | – | – | {} |", r.label, why);
            }
        }
    }
    let failures: Vec<String> = results
        .iter()
        .filter(|r| r.phase == phase && r.store == store && r.summary.is_some())
        .flat_map(|r| {
            r.errors
                .iter()
                .map(move |e| format!("{}: {e}", r.runner.name()))
        })
        .collect();
    for failure in failures {
        let _ = writeln!(out, "\nFailed run: {failure}");
    }
    out.push('\n');
}

fn cell(result: Option<&CaseResult>) -> String {
    match result.and_then(|r| r.summary.as_ref()) {
        Some(s) => format!("{:.2} ({:.0} MiB)", s.median_gib_s, s.peak_rss_mib),
        None => "–".into(),
    }
}

fn concurrency_table(out: &mut String, results: &[CaseResult], size: u64) {
    let mut levels: Vec<usize> = results
        .iter()
        .filter(|r| r.phase == "scan-c")
        .map(|r| r.concurrency)
        .collect();
    if levels.is_empty() {
        return;
    }
    if let Some(main) = results
        .iter()
        .find(|r| r.phase == "main" && r.runner == Who::Osspipe)
    {
        levels.push(main.concurrency);
    }
    levels.sort_unstable();
    levels.dedup();
    let _ = writeln!(
        out,
        "### Concurrency scan (memory store, {}, median GiB/s and peak RSS)\n",
        human_size(size)
    );
    out.push_str("| runner |");
    for c in &levels {
        let _ = write!(out, " c={c} |");
    }
    out.push_str("\n|---|");
    for _ in &levels {
        out.push_str("---:|");
    }
    out.push('\n');
    for who in [Who::Limit, Who::Osspipe, Who::Opendal, Who::Sdk, Who::Cli] {
        let _ = write!(out, "| {} |", who.name());
        for &c in &levels {
            let r = results.iter().find(|r| {
                r.store == "memory" && r.runner == who && r.size == size && r.concurrency == c
            });
            let _ = write!(out, " {} |", cell(r));
        }
        out.push('\n');
    }
    out.push('\n');
}

fn size_table(out: &mut String, results: &[CaseResult], main_size: u64, concurrency: usize) {
    let mut sizes: Vec<u64> = results
        .iter()
        .filter(|r| r.phase == "scan-size")
        .map(|r| r.size)
        .collect();
    if sizes.is_empty() {
        return;
    }
    sizes.push(main_size);
    sizes.sort_unstable();
    sizes.dedup();
    let _ = writeln!(
        out,
        "### Stream size scan (memory store, c={concurrency}, median GiB/s and peak RSS)\n"
    );
    out.push_str("| runner |");
    for s in &sizes {
        let _ = write!(out, " {} |", human_size(*s));
    }
    out.push_str("\n|---|");
    for _ in &sizes {
        out.push_str("---:|");
    }
    out.push('\n');
    for who in Who::TABLE {
        let _ = write!(out, "| {} |", who.name());
        for &size in &sizes {
            let r = results.iter().find(|r| {
                r.store == "memory"
                    && r.runner == who
                    && r.size == size
                    && (r.concurrency == concurrency || who == Who::SdkDefault)
                    && (r.phase == "main" || r.phase == "scan-size")
            });
            let _ = write!(out, " {} |", cell(r));
        }
        out.push('\n');
    }
    out.push('\n');
}

fn growth_section(out: &mut String, results: &[CaseResult]) {
    let Some(growth) = results.iter().find(|r| r.runner == Who::Growth) else {
        return;
    };
    let _ = writeln!(
        out,
        "### Part-size growth ({} stream, memory store)\n",
        human_size(growth.size)
    );
    match &growth.summary {
        Some(s) => {
            let timeline = &growth.rss_timeline;
            let at = |fraction: f64| -> String {
                if timeline.is_empty() {
                    return "–".into();
                }
                let i = ((timeline.len() - 1) as f64 * fraction).round() as usize;
                format!("{:.0}", timeline[i].1)
            };
            let _ = writeln!(
                out,
                "Parts of {} doubling every 16 parts up to {} (6 sizes), budget {:.0} MiB, \
                 c={}: {:.2} GiB/s, peak RSS {:.0} MiB, {:.2} CPU s/GiB. VmRSS at 10/25/50/75/100 % \
                 of the run: {} / {} / {} / {} / {} MiB ({} samples every 50 ms).\n",
                human_size(growth.part_size),
                human_size(16 << 20),
                growth.budget_mib.unwrap_or(f64::NAN),
                growth.concurrency,
                s.median_gib_s,
                s.peak_rss_mib,
                s.cpu_s_per_gib,
                at(0.10),
                at(0.25),
                at(0.5),
                at(0.75),
                at(1.0),
                timeline.len()
            );
        }
        None => {
            let _ = writeln!(out, "Failed: {}\n", growth.errors.join("; "));
        }
    }
}

fn checks_table(out: &mut String, checks: &[Check]) {
    if checks.is_empty() {
        return;
    }
    out.push_str("### Targets\n\n| issue | target | measured | |\n|---|---|---|---|\n");
    for check in checks {
        let verdict = match check.pass {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            check.issue, check.target, check.measured, verdict
        );
    }
    out.push('\n');
}

pub fn markdown(results: &Results) -> String {
    let meta = &results.meta;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## osspipe upload benchmarks\n\n\
         One {} seeded stream (not zeros), {} parts, concurrency {}, median of {} alternating runs. \
         The server is osspipe's local server in its own process on 127.0.0.1 (ETag mode: {}); \
         every uploader runs in its own process (peak RSS and CPU are its own) and every stored \
         object's size and CRC-64 are checked.\n",
        human_size(meta.size),
        human_size(meta.part_size),
        meta.concurrency,
        meta.runs,
        meta.etag_mode
    );
    out.push_str(&meta_lines(meta));
    out.push('\n');
    let _ = writeln!(out, "### Memory store ({} ETags)\n", meta.etag_mode);
    main_table(&mut out, &results.results, "main", "memory");
    if results.results.iter().any(|r| r.store == "directory") {
        let _ = writeln!(out, "### Directory store ({} ETags)\n", meta.etag_mode);
        main_table(&mut out, &results.results, "main", "directory");
    }
    concurrency_table(&mut out, &results.results, meta.size);
    size_table(&mut out, &results.results, meta.size, meta.concurrency);
    growth_section(&mut out, &results.results);
    if let Some(g) = results
        .results
        .iter()
        .find(|r| r.runner == Who::Generator)
        .and_then(|r| r.summary.as_ref())
    {
        let _ = writeln!(
            out,
            "Generator alone (included in the osspipe and OpenDAL rows, which generate their own \
             data): {:.2} GiB/s, {:.2} CPU s/GiB.\n",
            g.median_gib_s, g.cpu_s_per_gib
        );
    }
    checks_table(&mut out, &results.checks);
    out
}

/// A server case's UploadPart-phase rates (GiB/s) of the given samples, sorted.
fn upload_part_rates(r: &CaseResult, samples: &[crate::bench::Sample]) -> Vec<f64> {
    let mut rates: Vec<f64> = samples
        .iter()
        .filter_map(|s| Some(r.size as f64 / GIB / s.parts_seconds?))
        .collect();
    rates.sort_by(f64::total_cmp);
    rates
}

/// The median of `values`, or `None` for none.
fn median_of(mut values: Vec<f64>) -> Option<f64> {
    (!values.is_empty()).then(|| median(&mut values))
}

/// The median of the server process's CPU seconds per GiB over the measured runs.
fn server_cpu_per_gib(r: &CaseResult) -> Option<f64> {
    median_of(
        r.samples
            .iter()
            .filter_map(|s| Some(s.server_cpu_seconds? / (r.size as f64 / GIB)))
            .collect(),
    )
}

/// Turns the server cases into the server bench's results and checks.
pub fn server_bench_results(meta: Meta, results: Vec<CaseResult>) -> ServerBench {
    let find = |store: Store| results.iter().find(|r| r.store == store.name());
    let rate = |store: Store| {
        let r = find(store)?;
        median_of(upload_part_rates(r, &r.samples))
    };
    let check = |issue: &'static str, a: Store, b: Store| {
        let target = format!("{} ≥ 0.7 × {}", a.name(), b.name());
        compare(issue, target, rate(a).zip(rate(b)), "GiB/s", 0.7)
    };
    // Not a target: the rate each server could sustain on one core of its own, from its CPU
    // time, which the machine's load moves much less than the wall-clock rate (so the ratio
    // is the yardstick's CPU over the store's).
    let cpu_check = |a: Store, b: Store| {
        let target = format!("{} ≥ 0.7 × {}, by server CPU per GiB", a.name(), b.name());
        let cpu = |store: Store| find(store).and_then(server_cpu_per_gib);
        compare("context", target, cpu(b).zip(cpu(a)), "CPU s/GiB", 0.7)
    };
    let checks = vec![
        check("server (3)", Store::Memory, Store::BareDiscard),
        check("server (3)", Store::Directory, Store::BareFiles),
        cpu_check(Store::Memory, Store::BareDiscard),
        cpu_check(Store::Directory, Store::BareFiles),
        // Not a target: how much of the memory store's gap is keeping the data at all.
        check("context", Store::Memory, Store::BareKeep),
    ];
    ServerBench {
        meta,
        results,
        checks,
    }
}

pub fn server_bench_markdown(bench: &ServerBench) -> String {
    let meta = &bench.meta;
    let mut out = String::new();
    let warmups = bench.results.first().map_or(0, |r| r.warmup.len());
    let _ = writeln!(
        out,
        "## Server bench: UploadPart acceptance\n\n\
         The same bare-reqwest client (pre-cut {} parts, concurrency {}, a {} upload per run, \
         {warmups} unmeasured warm-up round(s), then the median of {} alternating runs) against \
         the servers, each in its own process; the in-memory servers run first, then the file \
         writers, never both groups at once. Rate = bytes / time of the UploadPart phase \
         (Initiate and Complete excluded); server CPU = the server process's user + system time \
         while the client ran, per GiB. osspipe's ETag mode: {}.\n",
        human_size(meta.part_size),
        meta.concurrency,
        human_size(meta.size),
        meta.runs,
        meta.etag_mode
    );
    out.push_str(&meta_lines(meta));
    out.push_str(
        "\n| server | median GiB/s | min–max | server CPU s/GiB | first (cold) run GiB/s | parts/s | server-side work |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
    );
    for r in &bench.results {
        let rates = upload_part_rates(r, &r.samples);
        let what = match r.store {
            "memory" => {
                "osspipe memory store: V4 auth, CRC-64, opaque ETag, copies into pooled blocks"
            }
            "bare-discard" => "bare hyper 1: reads and drops the body",
            "bare-keep" => "bare hyper 1: keeps the body chunks in memory until Complete",
            "directory" => "osspipe directory store: auth, CRC-64, ETag, blob file + JSON record",
            "bare-files" => "bare hyper 1: writes the body to a new file (1 MiB batches)",
            _ => "",
        };
        if rates.is_empty() {
            let _ = writeln!(
                out,
                "| {} | – | – | – | – | – | {what} ({}) |",
                r.store,
                r.errors.join("; ")
            );
            continue;
        }
        let median = median_of(rates.clone()).expect("not empty");
        let parts_per_gib = GIB / r.part_size as f64;
        let cold = upload_part_rates(r, &r.warmup[..r.warmup.len().min(1)])
            .first()
            .map_or("–".to_owned(), |rate| format!("{rate:.2}"));
        let cpu = server_cpu_per_gib(r).map_or("–".to_owned(), |cpu| format!("{cpu:.2}"));
        let _ = writeln!(
            out,
            "| {} | {median:.2} | {:.2}–{:.2} | {cpu} | {cold} | {:.0} | {what} |",
            r.store,
            rates[0],
            rates[rates.len() - 1],
            median * parts_per_gib
        );
    }
    out.push('\n');
    checks_table(&mut out, &bench.checks);
    out
}
