#include "batch/html_report.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "agent/trajectory.h"
#include "agent/trajectory_view.h"
#include "common/file_util.h"
#include "common/json.h"
#include "common/strings.h"

namespace v4agent::batch {
namespace {

namespace fs = std::filesystem;
using agent::HtmlEscape;

constexpr char kStyle[] = R"css(
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em}
th{background:#f0f0f0}tr.resolved td.res{background:#d8f5d8}tr.unresolved td.res{background:#f8dcdc}
pre{white-space:pre-wrap;margin:.2em 0 .6em 1.2em;font-size:90%}
.label{font-weight:bold}.think pre{color:#666;font-style:italic}.call .label{color:#06c}
.result .label{color:#a60}.note .label{color:#909}.hdr{margin-top:.8em;border-top:1px solid #ddd}
details{margin:.6em 0}summary{cursor:pointer;font-weight:bold}
)css";

// Filter by status; the count of shown rows proves the script ran.
constexpr char kScript[] = R"js(
function v4filter(){var s=document.getElementById('status-filter').value,n=0;
document.querySelectorAll('#instances tbody tr').forEach(function(r){
var show=!s||r.dataset.status===s||r.dataset.resolution===s;r.style.display=show?'':'none';if(show)n++;});
document.getElementById('shown').textContent=n+' shown';}
function v4open(){var h=decodeURIComponent(location.hash.slice(1));var d=h&&document.getElementById(h);
if(d&&d.tagName==='DETAILS')d.open=true;}
window.addEventListener('hashchange',v4open);
document.addEventListener('DOMContentLoaded',function(){v4filter();v4open();});
)js";

std::string Page(const std::string& title, const std::string& body) {
  return StrCat("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", HtmlEscape(title),
                "</title><style>", kStyle, "</style><script>", kScript, "</script></head><body>\n",
                body, "</body></html>\n");
}

Result<std::string> ReplayOf(const std::string& trajectory) {
  V4_ASSIGN_OR_RETURN(std::vector<Json> records, agent::ReadTrajectory(trajectory));
  return agent::ReplayHtml(records);
}

// Finds an evaluation summary: resolved/unresolved/error ids by instance.
std::map<std::string, std::string> Resolutions(const std::string& dir, std::string summary) {
  std::map<std::string, std::string> out;
  if (summary.empty()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() != ".json" || e.path().filename() == "summary.json") continue;
      auto text = ReadFile(e.path().string());
      if (text.ok() && text->find("\"resolved_ids\"") != std::string::npos) {
        summary = e.path().string();
        break;
      }
    }
  }
  if (summary.empty()) return out;
  auto text = ReadFile(summary);
  if (!text.ok()) return out;
  auto j = ParseJson(*text, summary);
  if (!j.ok() || !j->is_object()) return out;
  for (const char* kind : {"resolved", "unresolved", "error", "empty_patch"}) {
    auto it = j->find(StrCat(kind, "_ids"));
    if (it == j->end() || !it->is_array()) continue;
    for (const Json& id : *it) {
      if (id.is_string()) out[id.get<std::string>()] = kind;
    }
  }
  return out;
}

std::string Cell(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_number_float()) return StrCat(static_cast<int64_t>(it->get<double>() * 10) / 10.0);
  return HtmlEscape(it->is_string() ? it->get<std::string>() : it->dump());
}

Result<std::string> BatchPage(const std::string& dir, const HtmlReportOptions& options) {
  const fs::path root(dir);
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / "instances", ec)) {
    if (e.is_directory()) ids.push_back(e.path().filename().string());
  }
  if (ec) return NotFoundError(StrCat(dir, ": no instances/ directory (", ec.message(), ")"));
  std::sort(ids.begin(), ids.end());
  const auto resolution = Resolutions(dir, options.eval_summary);
  std::string table, sections;
  std::set<std::string> statuses;
  int resolved = 0;
  for (const std::string& id : ids) {
    const fs::path inst = root / "instances" / id;
    Json status = Json::object();
    if (auto text = ReadFile((inst / "status.json").string()); text.ok()) {
      auto j = ParseJson(*text, (inst / "status.json").string());
      if (j.ok() && j->is_object()) status = *j;
    }
    const std::string st = status.value("status", "unfinished");
    statuses.insert(st);
    std::string res;
    if (auto it = resolution.find(id); it != resolution.end()) res = it->second;
    if (!res.empty()) statuses.insert(res);
    resolved += res == "resolved";
    const std::string anchor = HtmlEscape("inst-" + id);
    table +=
        StrCat("<tr class=\"", HtmlEscape(res), "\" data-status=\"", HtmlEscape(st),
               "\" data-resolution=\"", HtmlEscape(res), "\"><td><a href=\"#", anchor, "\">",
               HtmlEscape(id), "</a></td><td>", HtmlEscape(st), "</td><td class=\"res\">",
               HtmlEscape(res.empty() ? "-" : res), "</td><td>", Cell(status, "tokens_prefilled"),
               "</td><td>", Cell(status, "tokens_reused"), "</td><td>",
               Cell(status, "tokens_generated"), "</td><td>", Cell(status, "seconds"), "</td><td>",
               Cell(status, "patch_bytes"), "</td><td>", Cell(status, "detail"), "</td></tr>\n");
    std::string replay;
    const std::string traj = (inst / "trajectory.jsonl").string();
    if (fs::exists(traj)) {
      auto r = ReplayOf(traj);
      replay = r.ok() ? *r : StrCat("<p>", HtmlEscape(r.status().ToString()), "</p>");
    } else {
      replay = "<p>no trajectory</p>";
    }
    sections +=
        StrCat("<details id=\"", anchor, "\"><summary>", HtmlEscape(id), " - ", HtmlEscape(st),
               res.empty() ? "" : " - " + HtmlEscape(res), "</summary>\n", replay, "</details>\n");
  }
  std::string filter = "<option value=\"\">all</option>";
  for (const auto& s : statuses) {
    filter += StrCat("<option value=\"", HtmlEscape(s), "\">", HtmlEscape(s), "</option>");
  }
  std::string head = StrCat("<h1>v4agent batch: ", HtmlEscape(root.filename().string()), "</h1>\n");
  if (auto text = ReadFile((root / "summary.json").string()); text.ok()) {
    head += StrCat("<pre id=\"summary\">", HtmlEscape(*text), "</pre>\n");
  }
  if (!resolution.empty()) {
    head += StrCat("<p id=\"resolved\">resolved ", resolved, " of ", ids.size(), "</p>\n");
  }
  const std::string body = StrCat(
      head, "<p>status <select id=\"status-filter\" onchange=\"v4filter()\">", filter,
      "</select> <span id=\"shown\"></span></p>\n<table id=\"instances\"><thead><tr>"
      "<th>instance</th><th>status</th><th>resolution</th><th>prefilled</th><th>reused</th>"
      "<th>generated</th><th>seconds</th><th>patch bytes</th><th>detail</th></tr></thead><tbody>\n",
      table, "</tbody></table>\n", sections);
  return Page(StrCat("v4agent batch ", root.filename().string()), body);
}

}  // namespace

Result<std::string> HtmlReport(const std::string& path, const HtmlReportOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::is_directory(fs::path(path) / "instances")) return BatchPage(path, options);
    const std::string traj = (fs::path(path) / "trajectory.jsonl").string();
    if (!fs::exists(traj)) {
      return NotFoundError(
          StrCat(path, ": neither a batch directory (instances/) nor a run (trajectory.jsonl)"));
    }
    V4_ASSIGN_OR_RETURN(std::string replay, ReplayOf(traj));
    return Page(traj, StrCat("<h1>", HtmlEscape(traj), "</h1>\n", replay));
  }
  V4_ASSIGN_OR_RETURN(std::string replay, ReplayOf(path));
  return Page(path, StrCat("<h1>", HtmlEscape(path), "</h1>\n", replay));
}

}  // namespace v4agent::batch
