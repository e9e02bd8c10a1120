"""The inspectors' pages in Vietnamese first, English second."""

from __future__ import annotations

LANGS = ("vi", "en")

_TEXT: dict[str, tuple[str, str]] = {
    "app": ("Đánh giá mức độ hài lòng", "Citizen satisfaction"),
    "overview": ("Tổng quan", "Overview"),
    "units": ("Đơn vị", "Units"),
    "unit": ("Đơn vị", "Unit"),
    "counter": ("Quầy", "Counter"),
    "counters": ("Quầy", "Counters"),
    "officer": ("Cán bộ", "Officer"),
    "officers": ("Cán bộ", "Officers"),
    "kiosks": ("Thiết bị", "Kiosks"),
    "kiosk": ("Thiết bị", "Kiosk"),
    "flagged": ("Lượt bấm cần xem xét", "Flagged presses"),
    "alerts": ("Cảnh báo", "Alerts"),
    "admin": ("Quản trị", "Admin"),
    "users": ("Người dùng", "Users"),
    "audit": ("Nhật ký truy cập", "Audit log"),
    "roster": ("Lịch trực", "Duty roster"),
    "rules": ("Quy tắc cảnh báo", "Alert rules"),
    "login": ("Đăng nhập", "Log in"),
    "logout": ("Đăng xuất", "Log out"),
    "username": ("Tên đăng nhập", "User name"),
    "password": ("Mật khẩu", "Password"),
    "period": ("Kỳ báo cáo", "Period"),
    "day": ("Ngày", "Day"),
    "week": ("Tuần", "Week"),
    "month": ("Tháng", "Month"),
    "quarter": ("Quý", "Quarter"),
    "year": ("Năm", "Year"),
    "custom": ("Tùy chọn", "Custom"),
    "from": ("Từ ngày", "From"),
    "to": ("Đến ngày", "To"),
    "show": ("Xem", "Show"),
    "rate": ("Tỷ lệ hài lòng", "Satisfaction rate"),
    "index": ("Chỉ số", "Index"),
    "average": ("Điểm TB", "Average"),
    "total": ("Tổng lượt", "Ratings"),
    "previous": ("Kỳ trước", "Previous period"),
    "change": ("Thay đổi", "Change"),
    "name": ("Tên", "Name"),
    "kind": ("Loại", "Kind"),
    "trend": ("Xu hướng", "Trend"),
    "online": ("Trực tuyến", "Online"),
    "offline": ("Mất kết nối", "Offline"),
    "never_seen": ("Chưa kết nối", "Never seen"),
    "last_seen": ("Lần cuối", "Last seen"),
    "backlog": ("Tồn đọng", "Backlog"),
    "camera": ("Camera", "Camera"),
    "clock": ("Đồng hồ", "Clock"),
    "firmware": ("Phiên bản", "Firmware"),
    "uptime_office": ("Hoạt động trong giờ làm việc", "Uptime in office hours"),
    "silent": ("Không có lượt đánh giá trong giờ làm việc", "Silent during office hours"),
    "kiosks_offline": ("Thiết bị mất kết nối", "Kiosks offline"),
    "open_alerts": ("Cảnh báo chưa xử lý", "Open alerts"),
    "no_data": ("Chưa có đánh giá trong kỳ", "No ratings in this period"),
    "by_day": ("Tỷ lệ hài lòng theo ngày", "Satisfaction by day"),
    "by_month": ("Tỷ lệ hài lòng theo tháng", "Satisfaction by month"),
    "heatmap": (
        "Tỷ lệ Không hài lòng theo giờ và thứ (số Không hài lòng / số lượt)",
        "Share dissatisfied by hour and weekday (dissatisfied / ratings)",
    ),
    "nobody": ("(không có cán bộ trực)", "(nobody on duty)"),
    "recent": ("Lượt đánh giá gần đây", "Recent ratings"),
    "time": ("Thời gian", "Time"),
    "score": ("Mức", "Score"),
    "snapshot": ("Ảnh", "Snapshot"),
    "view": ("Xem ảnh", "View"),
    "reason": ("Lý do", "Reason"),
    "review": ("Đã xem xét", "Reviewed"),
    "comment": ("Ghi chú", "Comment"),
    "mark_reviewed": ("Đánh dấu đã xem xét", "Mark reviewed"),
    "review_ticked": ("Đánh dấu các lượt đã chọn là đã xem xét", "Mark the ticked presses reviewed"),
    "comment_for_ticked": ("Ghi chú cho các lượt đã chọn", "Comment for the ticked presses"),
    "tick": ("Chọn", "Tick"),
    "audit_action": ("Thao tác", "Action"),
    "end_duty": ("Kết thúc ca", "End this duty"),
    "press": ("Lượt đánh giá", "Press"),
    "earlier_picture": ("Ảnh trước", "Earlier picture"),
    "later_picture": ("Ảnh sau", "Later picture"),
    "nobody_on_duty": ("Không có cán bộ trực", "Nobody on duty"),
    "no_picture": ("Lượt này không có ảnh", "No picture for this press"),
    "details": ("Chi tiết", "Details"),
    "change_grant": ("Đổi vai trò/đơn vị", "Change role and unit"),
    "no_self_edit": ("Không thể tự đổi vai trò hay đơn vị của mình", "You cannot change your own role or unit"),
    "done_user_disable": (
        "Đã vô hiệu hóa người dùng {name} và kết thúc các phiên",
        "Disabled the user {name} and ended their sessions",
    ),
    "done_user_enable": ("Đã kích hoạt lại người dùng {name}", "Enabled the user {name}"),
    "done_user_unlock": ("Đã mở khóa người dùng {name}", "Unlocked the user {name}"),
    "done_user_passwd": ("Đã đặt mật khẩu mới cho {name}", "Set the new password of {name}"),
    "done_user_edit": ("Đã đổi vai trò và đơn vị của {name}", "Changed the role and unit of {name}"),
    "done_user_add": ("Đã thêm người dùng {name}", "Added the user {name}"),
    "done_duty_removed": ("Đã xóa ca trực chưa bắt đầu: {name}", "Removed a duty that had not begun: {name}"),
    "done_duty_ended": ("Đã kết thúc ca trực: {name}", "Ended the duty now: {name}"),
    "done_duty_over": ("Ca trực đã kết thúc từ trước: {name}", "That duty was already over: {name}"),
    "done_add_officer": ("Đã thêm cán bộ {name}", "Added the officer {name}"),
    "done_edit_officer": ("Đã lưu thông tin cán bộ {name}", "Saved the officer {name}"),
    "done_add_duty": ("Đã thêm ca trực: {name}", "Added the duty: {name}"),
    "done_edit_duty": (
        "Đã sửa ca trực: {name}; các lượt đánh giá trong ca được tính theo cán bộ và thời gian mới",
        "Changed the duty: {name}; its ratings now count for its new officer and times",
    ),
    "done_import_roster": ("Đã nhập {n} ca trực", "Imported {n} duties"),
    "done_set_alert_rules": ("Đã lưu quy tắc cảnh báo của {name}", "Saved the alert rules of {name}"),
    "edit_officer": ("Sửa cán bộ", "Edit officer"),
    "duties_in": ("Ca trực trong", "Duties in"),
    "period_ongoing": (
        "Kỳ này chưa kết thúc: số liệu tính đến hôm nay, còn kỳ trước là cả kỳ.",
        "This period is not over: its figures are up to today, the period before is whole.",
    ),
    "done_replace_registry": (
        "Đã thay danh mục: {units} đơn vị, {counters} quầy, {kiosks} thiết bị",
        "Replaced the registry: {units} units, {counters} counters, {kiosks} kiosks",
    ),
    "done_reviewed": ("Đã xem xét {n} lượt bấm", "Reviewed {n} press(es)"),
    "done_alert_acked": ("Đã xác nhận cảnh báo", "Acknowledged the alert"),
    "done_alert_acked_before": (
        "Cảnh báo này đã được xác nhận từ trước; không có gì thay đổi",
        "That alert had been acknowledged already; nothing changed",
    ),
    "edit_duty": ("Sửa ca trực", "Edit duty"),
    "edit_duty_note": (
        "Sửa khi ca trực đã nhập sai: các lượt đánh giá trong ca sẽ được tính theo cán bộ và thời gian mới "
        "trong mọi báo cáo. Việc sửa được ghi vào nhật ký.",
        "For a duty entered wrongly: the ratings in it will count for the new officer and times in every "
        "report. The change is kept in the audit log.",
    ),
    "rule_dissatisfied_share": ("Tỷ lệ Không hài lòng gây cảnh báo (0–1)", "Dissatisfied share that alerts (0–1)"),
    "rule_window_h": ("Khoảng xét (giờ)", "Window (hours)"),
    "rule_min_ratings": ("Số lượt tối thiểu để xét", "Fewest ratings to judge"),
    "rule_silent_min": ("Không có lượt nào trong giờ làm việc (phút)", "No rating in office hours (minutes)"),
    "rule_offline_min": ("Thiết bị mất kết nối (phút)", "Kiosk offline (minutes)"),
    "rule_inherited": ("theo đơn vị cấp trên", "from the unit above"),
    "audit_target": ("Đối tượng", "Target"),
    "audit_detail": ("Chi tiết", "Detail"),
    "compare": ("So sánh", "Compare"),
    "compare_note": (
        "Kỳ này, kỳ trước và cùng kỳ năm trước. Thay đổi = kỳ này trừ kỳ được so sánh; tỷ lệ tính bằng điểm phần trăm.",
        "This period, the one before and the same period a year before. Change = this period minus"
        " the one compared; rates in percentage points.",
    ),
    "all_reasons": ("Mọi lý do", "Every reason"),
    "all_counters": ("Mọi quầy", "Every counter"),
    "acknowledge": ("Xác nhận đã xử lý", "Acknowledge"),
    "exports": ("Xuất báo cáo", "Exports"),
    "three_level": ("Mẫu báo cáo 3 mức", "Three-level form"),
    "pdf_report": ("Báo cáo PDF", "PDF report"),
    "table": ("Bảng", "Table"),
    "add": ("Thêm", "Add"),
    "import_csv": ("Nhập từ CSV", "Import CSV"),
    "role": ("Vai trò", "Role"),
    "start": ("Bắt đầu", "Start"),
    "end": ("Kết thúc", "End"),
    "save": ("Lưu", "Save"),
    "remote_settings": ("Cài đặt thiết bị từ xa", "Remote kiosk settings"),
    "own_settings": ("Cài đặt riêng", "Own settings"),
    "in_force": ("Đang áp dụng", "In force"),
    "kiosk_reports": ("Thiết bị báo", "Kiosk reports"),
    "edit": ("Sửa", "Edit"),
    "clear_settings": ("Xóa cài đặt riêng (dùng cài đặt cấp trên)", "Clear own settings (inherit)"),
    "inherited": ("Kế thừa", "Inherited"),
    "settings_help": (
        "Ô để trống thì dùng giá trị của cấp trên hoặc của tệp kiosk.toml. Thiết bị kiểm tra toàn bộ"
        " trước khi dùng: một giá trị sai thì không áp dụng gì cả và thiết bị báo lý do.",
        "An empty field inherits from the unit above or from kiosk.toml. The kiosk checks the whole"
        " before using any of it: one wrong value and nothing is applied, and the kiosk says why.",
    ),
    "set_panel.lockout_s": ("Thời gian khóa sau mỗi lượt bấm (giây)", "Lock-out after a press (s)"),
    "set_panel.max_per_minute": ("Số lượt đánh giá tối đa mỗi phút", "Most ratings a minute"),
    "set_panel.flagged_per_minute": ("Số lượt bị từ chối được lưu mỗi phút", "Refused presses kept a minute"),
    "set_panel.scores": ("Điểm của nút 1–4 (ví dụ 4,3,2,1)", "Scores of buttons 1–4 (e.g. 4,3,2,1)"),
    "set_camera.enabled": ("Chụp ảnh (true/false)", "Take pictures (true/false)"),
    "set_camera.jpeg_quality": ("Chất lượng ảnh JPEG (1–100)", "JPEG quality (1–100)"),
    "set_camera.width": ("Chiều rộng ảnh (điểm ảnh)", "Picture width (pixels)"),
    "set_outbox.status_interval_s": ("Chu kỳ gửi trạng thái (giây)", "Status every (s)"),
    "set_office.weekdays": (
        "Ngày làm việc (0 = Thứ Hai … 6 = Chủ nhật, ví dụ 0,1,2,3,4)",
        "Office days (0 = Monday … 6 = Sunday, e.g. 0,1,2,3,4)",
    ),
    "set_office.spans": (
        "Giờ làm việc (ví dụ 07:30-11:30, 13:30-17:00); cập nhật phần mềm chỉ khởi động lại ngoài giờ này",
        "Office hours (e.g. 07:30-11:30, 13:30-17:00); an update restarts the kiosk only outside them",
    ),
    "set_office.timezone": ("Múi giờ (ví dụ Asia/Ho_Chi_Minh)", "Time zone (e.g. Asia/Ho_Chi_Minh)"),
    "settings_applied": ("đã áp dụng", "applied"),
    "kiosk_page": ("Thiết bị", "Kiosk"),
    "panel": ("Bảng nút", "Panel"),
    "health_week": ("Tình trạng 7 ngày qua", "Health over the last 7 days"),
    "status_samples": ("Trạng thái gần đây (mỗi 15 phút)", "Recent status (every 15 minutes)"),
    "online_history": ("Kết nối 30 ngày qua", "Online and offline, last 30 days"),
    "certificate": ("Chứng thư", "Certificate"),
    "expires": ("Hết hạn", "Expires"),
    "days_left": ("còn {n} ngày", "{n} days left"),
    "renewal": ("Gia hạn", "Renewal"),
    "retry_in": ("thử lại sau", "tried again in"),
    "kiosk_history": ("Lịch sử cập nhật, chứng thư và thao tác", "Updates, certificates and actions"),
    "history_kiosk_update": ("Cập nhật phần mềm", "Software update"),
    "history_renew_certificate": ("Gia hạn chứng thư", "Certificate renewed"),
    "history_request_selftest": ("Yêu cầu tự kiểm tra", "Self-test asked"),
    "history_update_action": ("Thao tác cập nhật", "Update action"),
    "history_set_remote_settings": ("Cài đặt từ xa", "Remote settings"),
    "settings_in_force": ("Cài đặt từ xa đang áp dụng", "Remote settings in force"),
    "run_selftest": ("Chạy tự kiểm tra từ xa", "Run a remote self-test"),
    "selftest_requested": (
        "Đã yêu cầu tự kiểm tra; thiết bị sẽ chạy khi nhận được (trong vài giây nếu đang kết nối).",
        "Self-test requested; the kiosk runs it when it gets the request (within seconds if connected).",
    ),
    "recent_presses": ("Lượt bấm gần nhất", "Newest presses"),
    "clock_source": ("Nguồn giờ", "Clock source"),
    "disk_free": ("Dung lượng trống (MB)", "Disk free (MB)"),
    "version": ("Phiên bản", "Version"),
    "update": ("Cập nhật", "Update"),
    "update_retry": ("Cho phép cập nhật lại", "Retry the update"),
    "update_rollback": ("Quay về phiên bản trước", "Roll back to the version before"),
    "update_retry_requested": (
        "Đã yêu cầu: thiết bị sẽ nhận lại bản cập nhật đã bị trả về.",
        "Requested: the kiosk will take again a release it switched back from.",
    ),
    "update_rollback_requested": (
        "Đã yêu cầu: thiết bị sẽ quay về phiên bản trước và khởi động lại.",
        "Requested: the kiosk goes back to the version before and restarts.",
    ),
    "edit_settings": ("Sửa cài đặt", "Edit settings"),
    "settings_refused": ("bị từ chối", "refused"),
    "flag_lockout": ("Bấm lại trong thời gian khóa", "Pressed again during lock-out"),
    "flag_burst": ("Bấm dồn dập", "Burst of presses"),
    "flag_after_hours": ("Ngoài giờ làm việc", "After office hours"),
    "flag_unsynced": ("Đồng hồ chưa đồng bộ", "Clock not synchronised"),
    "possibly_missing": ("Có thể thiếu", "Possibly missing"),
    "flagged_count": ("Lượt bị từ chối", "Refused presses"),
    "completeness": ("Tính đầy đủ của dữ liệu", "Completeness of the data"),
    "complete_all": (
        "Dữ liệu đầy đủ: không thiết bị nào còn giữ lượt đánh giá chưa gửi về",
        "Data complete: no kiosk holds ratings not yet received",
    ),
    "complete_up_to": (
        "Dữ liệu đầy đủ đến {at}: còn {n} lượt đánh giá ở {k} thiết bị chưa gửi về",
        "Data complete up to {at}: {n} ratings at {k} kiosks not yet received",
    ),
    "complete_unknown": (
        "Chưa rõ dữ liệu đầy đủ đến khi nào: còn {n} lượt đánh giá ở {k} thiết bị chưa gửi về"
        " (thiết bị không báo thời gian — cần cập nhật phần mềm)",
        "Completeness unknown: {n} ratings at {k} kiosks not yet received"
        " (a kiosk does not say since when — update its software)",
    ),
    "period_incomplete": (
        "Kỳ này có thể chưa đủ dữ liệu — kiểm tra kết nối của các thiết bị dưới đây",
        "This period may not be complete yet — check the connection of the kiosks below",
    ),
    "pending_kiosk": (
        "{kiosk}: {n} lượt, cũ nhất bấm lúc {at} (báo lúc {reported})",
        "{kiosk}: {n} ratings, the oldest pressed {at} (reported {reported})",
    ),
    "late_arrivals": ("Đánh giá đến muộn", "Late arrivals"),
    "late_line": (
        "Tháng {month}: {n} lượt đánh giá đến sau khi báo cáo tháng của {unit} đã gửi ngày {at}",
        "{month}: {n} ratings arrived after the monthly report of {unit} was sent on {at}",
    ),
    "mail_missing": (
        "DỮ LIỆU CHƯA ĐẦY ĐỦ: khi lập báo cáo, các thiết bị dưới đây còn giữ {n} lượt đánh giá chưa gửi về"
        " (có thể thuộc tháng này):",
        "DATA NOT COMPLETE: when this report was made, the kiosks below still held {n} ratings not yet"
        " received (possibly of this month):",
    ),
    "mail_missing_kiosk": (
        "{kiosk} ({counter}): {n} lượt, cũ nhất bấm lúc {at}; báo lúc {reported} ({state})",
        "{kiosk} ({counter}): {n} ratings, the oldest pressed {at}; reported {reported} ({state})",
    ),
    "mail_missing_after": (
        "Khi về tới, các lượt này được tính vào tháng của chúng và được liệt kê là đánh giá đến muộn"
        " trong báo cáo tháng sau. Kiểm tra điện và kết nối mạng của các thiết bị này.",
        "When they arrive they count in their month and are listed as late arrivals in next month's"
        " report. Check the power and network of these kiosks.",
    ),
    "mail_late": (
        "ĐÁNH GIÁ ĐẾN MUỘN (về sau khi báo cáo tháng của chúng đã gửi, chưa có trong báo cáo đó):",
        "LATE ARRIVALS (received after their month's report was sent, not in that report):",
    ),
    "unknown_time": ("không rõ (thiết bị không báo)", "unknown (the kiosk did not say)"),
    "showing": ("Đang xem", "Showing"),
    "newer_page": ("Mới hơn", "Newer"),
    "older_page": ("Cũ hơn", "Older"),
    "not_reviewed_of": ("chưa xem xét / tổng số", "not reviewed / in all"),
    "unsynced": ("Lượt có thời gian chưa xác minh", "Ratings with unverified time"),
    "unsynced_note": (
        "bấm khi đồng hồ thiết bị chưa đồng bộ: thời gian (và ngày) chưa được xác minh",
        "pressed while the kiosk's clock was not synchronised: their time (and day) is unverified",
    ),
    "form_unsynced_counted": (
        "Trong đó {n} lượt đánh giá có thời gian chưa xác minh (đồng hồ thiết bị chưa đồng bộ)",
        "Of these, {n} ratings have an unverified time (kiosk clock not synchronised)",
    ),
    "form_unsynced_left_out": (
        "Không tính {n} lượt đánh giá có thời gian chưa xác minh (đồng hồ thiết bị chưa đồng bộ)",
        "{n} ratings with an unverified time (kiosk clock not synchronised) are left out",
    ),
    "alert_text_dissatisfied": (
        "{unhappy}/{total} Không hài lòng ({share}) trong {window_h} giờ tại {counter_name}",
        "{unhappy}/{total} dissatisfied ({share}) within {window_h} h at {counter_name}",
    ),
    "alert_text_silent": (
        "Không có lượt đánh giá nào tại {counter_name} trong {minutes} phút giờ làm việc",
        "No rating at {counter_name} for {minutes} minutes of office hours",
    ),
    "alert_text_offline": (
        "Thiết bị {kiosk} (quầy {counter_name}) mất kết nối từ {since_local}",
        "Kiosk {kiosk} ({counter_name}) offline since {since_local}",
    ),
    "alert_text_cert_expiry": (
        "Chứng thư của thiết bị {kiosk} hết hạn {expires_local} ({left}) mà chưa được gia hạn",
        "The certificate of kiosk {kiosk} expires {expires_local} ({left}) and has not been renewed",
    ),
    "alert_text_crl_expiry": (
        "Danh sách thu hồi chứng thư (CRL) của đội thiết bị chưa gia hạn được: {error}",
        "The fleet's certificate revocation list could not be renewed: {error}",
    ),
    "cert_expired": ("đã hết hạn", "expired"),
    "cert_days_left": ("còn {n} ngày", "{n} days left"),
    "period_at": ("Một ngày trong kỳ", "A day in the period"),
    "last_unhappy_press": ("Lượt «Không hài lòng» gần nhất", "The last «dissatisfied» press"),
    "compare_empty": ("{label}: không có lượt đánh giá nào để so sánh", "{label}: no ratings to compare with"),
    "compare_partial": (
        "{label}: chỉ có dữ liệu từ {since}; các thay đổi so với kỳ này cần đọc thận trọng",
        "{label}: data only from {since}; read the changes against it with care",
    ),
    "menu": ("Trình đơn", "Menu"),
    "where_am_i": ("Vị trí trong cây đơn vị", "Where in the unit tree"),
    "pages_of_list": ("Các trang của danh sách", "Pages of the list"),
    "pages_of_list_end": ("Các trang của danh sách (cuối danh sách)", "Pages of the list (at its end)"),
    "raw_ratings": ("Từng lượt đánh giá", "Each rating"),
    "csv_data": ("cho phần mềm phân tích", "for analysis tools"),
    "csv_excel_note": (
        "Mở bằng Excel tiếng Việt: cột ngăn bằng dấu chấm phẩy, số thập phân có dấu phẩy, ngày dd/mm/yyyy",
        "For Excel set to Vietnamese: cells split by semicolons, decimal commas, dates dd/mm/yyyy",
    ),
    "csv_data_note": (
        "Cho phần mềm phân tích: cột ngăn bằng dấu phẩy, số thập phân có dấu chấm, thời gian ISO 8601 kèm múi giờ",
        "For scripts and BI tools: cells split by commas, decimal points, ISO 8601 times with their offset",
    ),
    "definitions": ("Cách tính các chỉ số", "How the figures are counted"),
    "def_rate": (
        "Tỷ lệ hài lòng = (Rất hài lòng + Hài lòng) / tổng số lượt đánh giá; lượt bấm bị từ chối không được tính.",
        "Satisfaction rate = (very satisfied + satisfied) / all ratings; rejected presses are not counted.",
    ),
    "def_index": (
        "Chỉ số hài lòng (0–100) = điểm bình quân với Rất hài lòng 100, Hài lòng 66,7, Bình thường 33,3, "
        "Không hài lòng 0.",
        "Satisfaction index (0–100) = mean points with very satisfied 100, satisfied 66.7, neutral 33.3, "
        "dissatisfied 0.",
    ),
    "def_average": (
        "Điểm trung bình (1–4) = bình quân các mức, Không hài lòng 1 … Rất hài lòng 4.",
        "Average (1–4) = mean of the levels, dissatisfied 1 … very satisfied 4.",
    ),
    "form_neutral_hai_long": (
        "Mẫu 3 mức: mức «Bình thường» của bảng 4 nút ({n} lượt) được tính là «Hài lòng» theo cấu hình của hệ thống.",
        "Three-level form: the panel's «neutral» ({n} ratings) is counted as «satisfied» as the system is configured.",
    ),
    "form_neutral_khong_hai_long": (
        "Mẫu 3 mức: mức «Bình thường» của bảng 4 nút ({n} lượt) được tính là «Không hài lòng» "
        "theo cấu hình của hệ thống.",
        "Three-level form: the panel's «neutral» ({n} ratings) is counted as «dissatisfied» "
        "as the system is configured.",
    ),
    "form_rate": (
        "Tỷ lệ hài lòng theo mẫu 3 mức = (Rất hài lòng + Hài lòng) / tổng số lượt = {rate}. "
        "Trên trang theo dõi (4 mức, «Bình thường» không tính là hài lòng): {rate4}.",
        "Satisfaction rate on the three-level form = (very satisfied + satisfied) / all = {rate}. "
        "On the dashboard (four levels, «neutral» not counted as satisfied): {rate4}.",
    ),
    "suppressed": ("Lượt bị bỏ qua", "Suppressed presses"),
    "denied": ("Không có quyền truy cập", "Access denied"),
    "not_found": ("Không tìm thấy", "Not found"),
    "wrong_login": ("Sai tên đăng nhập hoặc mật khẩu", "Wrong user name or password"),
    "language": ("English", "Tiếng Việt"),
    "selftest": ("Lắp đặt và kiểm tra", "Installed and tested"),
    "registry": ("Danh mục đơn vị, quầy, thiết bị", "Registry"),
    "upload_registry": ("Tải lên danh mục mới (TOML)", "Upload a new registry (TOML)"),
    "alert_dissatisfied": ("Tỷ lệ không hài lòng cao", "Many dissatisfied"),
    "alert_silent": ("Không có đánh giá", "Silent counter"),
    "alert_offline": ("Thiết bị mất kết nối", "Kiosk offline"),
    "account_state": ("Trạng thái", "State"),
    "active": ("Đang dùng", "Active"),
    "disabled": ("Đã khoá", "Disabled"),
    "locked": ("Tạm khoá do đăng nhập sai", "Locked after failed logins"),
    "enable": ("Mở lại", "Enable"),
    "disable": ("Khoá tài khoản", "Disable"),
    "unlock": ("Mở khoá đăng nhập", "Unlock"),
    "new_password": ("Mật khẩu mới", "New password"),
    "set_password": ("Đặt mật khẩu", "Set password"),
    "no_self_disable": ("Không thể tự khoá tài khoản của mình", "You cannot disable your own account"),
    "alert_crl_expiry": ("Danh sách thu hồi chứng thư sắp hết hạn", "Revocation list about to expire"),
    "alert_cert_expiry": ("Chứng thư thiết bị sắp hết hạn", "Kiosk certificate about to expire"),
    "alert_state": ("Trạng thái", "State"),
    "alert_state_all": ("Tất cả", "All"),
    "alert_state_open": ("Chưa xử lý", "Open"),
    "alert_state_acked": ("Đã xử lý", "Acknowledged"),
    "all_units": ("Tất cả đơn vị", "All units"),
    "about": ("Về", "About"),
    "no_alerts": ("Không có cảnh báo nào", "No alerts"),
    "next": ("Kỳ sau", "Next"),
}

# What each audit action means, for the audit page (the stored action stays the key).
AUDIT_ACTIONS: dict[str, tuple[str, str]] = {
    "login": ("Đăng nhập", "Logged in"),
    "account_locked": ("Khóa tài khoản sau nhiều lần đăng nhập sai", "Account locked after failed logins"),
    "add_user": ("Thêm người dùng", "Added a user"),
    "user_disable": ("Vô hiệu hóa người dùng", "Disabled a user"),
    "user_enable": ("Kích hoạt lại người dùng", "Enabled a user"),
    "user_unlock": ("Mở khóa người dùng", "Unlocked a user"),
    "user_passwd": ("Đổi mật khẩu", "Changed a password"),
    "user_edit": ("Đổi vai trò/đơn vị người dùng", "Changed a user's role and unit"),
    "add_token": ("Cấp mã truy cập API", "Issued an API token"),
    "revoke_token": ("Thu hồi mã truy cập API", "Revoked an API token"),
    "export_csv": ("Xuất CSV", "Exported CSV"),
    "export_xlsx": ("Xuất Excel", "Exported XLSX"),
    "export_pdf": ("Xuất báo cáo PDF", "Exported a PDF report"),
    "export_three_level_pdf": ("Xuất mẫu 3 mức (PDF)", "Exported the three-level form (PDF)"),
    "export_three_level_xlsx": ("Xuất mẫu 3 mức (Excel)", "Exported the three-level form (XLSX)"),
    "export_ratings_csv": ("Xuất từng lượt đánh giá (CSV)", "Exported raw ratings (CSV)"),
    "export_ratings_xlsx": ("Xuất từng lượt đánh giá (Excel)", "Exported raw ratings (XLSX)"),
    "export_registry": ("Tải danh mục đơn vị", "Downloaded the registry"),
    "replace_registry": ("Thay danh mục đơn vị", "Replaced the registry"),
    "view_snapshot": ("Xem ảnh chụp", "Viewed a snapshot"),
    "review": ("Xem xét lượt đánh giá", "Reviewed a press"),
    "ack_alert": ("Xác nhận cảnh báo", "Acknowledged an alert"),
    "add_officer": ("Thêm cán bộ", "Added an officer"),
    "edit_officer": ("Sửa thông tin cán bộ", "Changed an officer's name or unit"),
    "add_duty": ("Thêm ca trực", "Added a duty"),
    "edit_duty": ("Sửa ca trực", "Changed a duty"),
    "end_duty": ("Kết thúc ca trực", "Ended a duty"),
    "import_roster": ("Nhập lịch trực", "Imported a roster"),
    "set_alert_rules": ("Đặt ngưỡng cảnh báo", "Set alert rules"),
    "set_remote_settings": ("Đặt cấu hình thiết bị từ xa", "Set remote kiosk settings"),
    "request_selftest": ("Yêu cầu tự kiểm tra thiết bị", "Asked a kiosk for a self-test"),
    "update_action": ("Yêu cầu cập nhật/khôi phục phiên bản", "Asked a kiosk to retry or roll back an update"),
    "enrol_kiosk": ("Đăng ký thiết bị", "Enrolled a kiosk"),
    "release": ("Phát hành phiên bản", "Release"),
    "kiosk_update": ("Thiết bị cập nhật phiên bản", "Kiosk update step"),
    "renew_certificate": ("Gia hạn chứng thư thiết bị", "Renewed a kiosk certificate"),
}


# The words for values kiosks and accounts report, by kind (roles, the camera, the clock, an
# update's and a certificate renewal's steps). A value this version does not know shows as sent.
WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "role": {
        "admin": ("Quản trị", "Administrator"),
        "inspector": ("Thanh tra", "Inspector"),
        "viewer": ("Người xem", "Viewer"),
    },
    "camera": {
        "ok": ("Hoạt động", "Working"),
        "error": ("Lỗi", "Failing"),
        "disabled": ("Tắt", "Off"),
    },
    "panel": {
        "ok": ("Hoạt động", "Working"),
        "missing": ("Mất kết nối", "Not connected"),
    },
    "http_status": {  # the error page's title
        "400": ("Yêu cầu không hợp lệ", "Bad request"),
        "401": ("Cần đăng nhập", "Log-in needed"),
        "403": ("Không có quyền truy cập", "Access denied"),
        "404": ("Không tìm thấy", "Not found"),
        "405": ("Cách gửi không được nhận", "Method not allowed"),
        "413": ("Quá lớn", "Too large"),
        "422": ("Dữ liệu không hợp lệ", "Invalid input"),
        "429": ("Quá nhiều lần thử", "Too many attempts"),
        "500": ("Lỗi máy chủ", "Server error"),
        "503": ("Tạm thời không phục vụ được", "Unavailable for now"),
    },
    "snapshot_error": {  # why a press has no picture (kiosk/camera.py; "not_kept": the demo's history)
        "camera_disabled": ("Không dùng camera", "Camera off"),
        "camera_failed": ("Camera lỗi", "Camera failed"),
        "camera_unavailable": ("Không mở được camera", "Camera unavailable"),
        "timeout": ("Camera không kịp chụp", "Camera too slow"),
        "too_large": ("Ảnh quá lớn", "Picture too large"),
        "interrupted": ("Thiết bị khởi động lại khi đang chụp", "Kiosk restarted while taking it"),
        "not_kept": ("Ảnh không còn lưu", "Picture no longer kept"),
    },
    "clock": {
        "synced": ("Đã đồng bộ", "Synchronised"),
        "unsynced": ("Chưa đồng bộ", "Not synchronised"),
        "corrected": ("Chỉnh theo máy chủ", "Set from the collector"),
    },
    "update": {
        "downloading": ("Đang tải", "Downloading"),
        "installing": ("Đang cài đặt", "Installing"),
        "waiting": ("Chờ ngoài giờ làm việc", "Waiting for after office hours"),
        "switching": ("Đang chuyển phiên bản", "Switching"),
        "trial": ("Đang chạy thử", "On trial"),
        "updated": ("Đã cập nhật", "Updated"),
        "rolled_back": ("Đã quay lại bản cũ", "Rolled back"),
        "failed": ("Thất bại", "Failed"),
        "withdrawn": ("Đã hủy", "Withdrawn"),
    },
    "renewal": {
        "requested": ("Đã gửi yêu cầu", "Requested"),
        "renewed": ("Đã gia hạn", "Renewed"),
        "refused": ("Bị từ chối", "Refused"),
        "failed": ("Thất bại", "Failed"),
    },
}


def word(kind: str, value: object, lang: str) -> str:
    """The reader's word for a reported value (``word("clock", "synced", "vi")``); unknown: as sent."""
    if value is None or value == "":
        return "—"
    words = WORDS.get(kind, {}).get(str(value))
    return str(value) if words is None else words[0 if lang == "vi" else 1]


def audit_action(action: str, lang: str) -> str:
    """The reader's words for an audit action; an action this version does not know shows as stored."""
    words = AUDIT_ACTIONS.get(action)
    return action if words is None else words[0 if lang == "vi" else 1]


SCORE_LABELS = {
    "vi": {4: "Rất hài lòng", 3: "Hài lòng", 2: "Bình thường", 1: "Không hài lòng"},
    "en": {4: "Very satisfied", 3: "Satisfied", 2: "Neutral", 1: "Dissatisfied"},
}
WEEKDAYS = {
    "vi": ["T2", "T3", "T4", "T5", "T6", "T7", "CN"],
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
}


def text(key: str, lang: str) -> str:
    pair = _TEXT.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "vi" else pair[1]


# --- error messages -------------------------------------------------------------------------------
# The code's messages are English (logs, the CLI, the API's JSON); a page shows them in the
# reader's language. Each pair: the English message with {} where it has a value, and the
# Vietnamese sentence with {0}, {1}, … for those values (themselves translated when they are
# messages). A message missing here fails tests/collector/test_i18n.py.
ERRORS_VI: tuple[tuple[str, str], ...] = (
    (
        "account locked after repeated failures; try again later",
        "Tài khoản bị khoá do nhập sai nhiều lần; hãy thử lại sau",
    ),
    ("give the token a short name (what uses it)", "Hãy đặt cho mã truy cập một tên ngắn (nơi dùng nó)"),
    ("no active token {}", "Không có mã truy cập đang dùng {0}"),
    ("no user {}", "Không có người dùng {0}"),
    ("password must have at least {} and at most {} characters", "Mật khẩu phải có từ {0} đến {1} ký tự"),
    ("role must be one of {}, not {}", "Vai trò phải là một trong {0}, không phải {1}"),
    ("this account is disabled; ask an administrator", "Tài khoản này đã bị khoá; hãy hỏi quản trị viên"),
    ("unit {}: not one of yours", "Đơn vị {0} không thuộc quyền của bạn"),
    ("user name {}: letters, digits, '.', '-', '_' only", "Tên đăng nhập {0}: chỉ dùng chữ, số, '.', '-', '_'"),
    ("user {} exists already", "Người dùng {0} đã có"),
    ("a user name is at most {} characters", "Tên đăng nhập dài nhiều nhất {0} ký tự"),
    ("wrong user name or password", "Sai tên đăng nhập hoặc mật khẩu"),
    ("counter id {} is not valid", "Mã quầy {0} không hợp lệ"),
    ("counter {}: unit {} is not a unit", "Quầy {0}: {1} không phải là đơn vị"),
    ("duplicate {} id {}", "Trùng mã {0} {1}"),
    ("kiosk id {} is not valid (a-z 0-9 -, 2..63)", "Mã thiết bị {0} không hợp lệ (a-z 0-9 -, 2..63 ký tự)"),
    ("kiosk {}: counter {} is not a counter", "Thiết bị {0}: {1} không phải là quầy"),
    ("the new registry must keep your unit {}", "Danh mục mới phải giữ đơn vị {0} của bạn"),
    (
        "unit id {} is not valid (A-Z a-z 0-9 . _ -, 1..64)",
        "Mã đơn vị {0} không hợp lệ (A-Z a-z 0-9 . _ -, 1..64 ký tự)",
    ),
    ("unit {}: parent {} is not a unit", "Đơn vị {0}: đơn vị cấp trên {1} không có"),
    ("unit {}: parents form a cycle through {}", "Đơn vị {0}: các đơn vị cấp trên tạo thành vòng qua {1}"),
    (
        "{}: [[{}]] {}: {} must be a short, non-empty text",
        "{0}: [[{1}]] {2}: {3} phải là một đoạn chữ ngắn, không rỗng",
    ),
    ("{}: [[{}]] {} has unknown key(s) {}", "{0}: [[{1}]] {2} có khoá lạ {3}"),
    ("{}: [[{}]] {} lacks {}", "{0}: [[{1}]] {2} thiếu {3}"),
    ("{}: each [[{}]] must be a table", "{0}: mỗi [[{1}]] phải là một bảng"),
    ("{}: unknown table(s) {}", "{0}: bảng lạ {1}"),
    ("{}: {} must be an array of tables ([[{}]]), not {}", "{0}: {1} phải là danh sách bảng ([[{2}]]), không phải {3}"),
    ("a duty must end after it starts", "Ca trực phải kết thúc sau khi bắt đầu"),
    ("an officer needs a name", "Cán bộ cần có tên"),
    ("counter {} already has {} on duty from {} to {}", "Quầy {0} đã có {1} trực từ {2} đến {3}"),
    ("{} is already on duty at counter {} from {} to {}", "{0} đang có ca trực ở quầy {1} từ {2} đến {3}"),
    ("time {}: a year from {} to {}", "Thời gian {0}: năm phải từ {1} đến {2}"),
    ("a duty is at most {} days long", "Một ca trực dài nhiều nhất {0} ngày"),
    ("an officer's name holds a control or formatting character", "Tên cán bộ chứa ký tự điều khiển hoặc định dạng"),
    ("an officer's name is longer than {} characters", "Tên cán bộ dài quá {0} ký tự"),
    ("line {}: expected officer,counter,start,end", "Dòng {0}: cần officer,counter,start,end"),
    ("line {}: unknown counter {}", "Dòng {0}: không có quầy {1}"),
    ("line {}: unknown officer {}", "Dòng {0}: không có cán bộ {1}"),
    ("line {}: {}", "Dòng {0}: {1}"),
    ("not a CSV file this tool can read: {}", "Không đọc được tệp CSV này: {0}"),
    (
        "officer id {} is taken by an officer of another unit; choose another id",
        "Mã cán bộ {0} đã thuộc cán bộ của đơn vị khác; hãy chọn mã khác",
    ),
    ("officer id {}: letters, digits, '.', '_', '-' only", "Mã cán bộ {0}: chỉ dùng chữ, số, '.', '_', '-'"),
    (
        "time {}: write it as YYYY-MM-DD HH:MM or DD/MM/YYYY HH:MM (local time)",
        "Thời gian {0}: hãy viết YYYY-MM-DD HH:MM hoặc DD/MM/YYYY HH:MM (giờ địa phương)",
    ),
    ("dissatisfied_share must be above 0 and at most 1", "Tỷ lệ không hài lòng phải lớn hơn 0 và không quá 1"),
    ("say what was done about the alert", "Hãy ghi việc đã làm để xử lý cảnh báo"),
    ("window_h must be above 0 and at most {}", "Khoảng xét (giờ) phải lớn hơn 0 và không quá {0}"),
    ("{} must be a whole number from 1 to {}", "{0} phải là số nguyên từ 1 đến {1}"),
    ("{}: {} is not a number", "{0}: {1} không phải là một số"),
    ("an update action is {}", "Thao tác cập nhật là {0}"),
    (
        "settings are kept per unit or per kiosk, not per {}",
        "Cài đặt được lưu theo đơn vị hoặc theo thiết bị, không theo {0}",
    ),
    ("{} = {}: not a {}", "{0} = {1}: không phải {2}"),
    ("from ({}) is after to ({})", "Ngày bắt đầu ({0}) sau ngày kết thúc ({1})"),
    (
        "period must be one of {} (or from/to), not {}",
        "Kỳ phải là một trong {0} (hoặc từ ngày/đến ngày), không phải {1}",
    ),
    ("{}: dates lie between {} and {}", "{0}: ngày phải nằm trong khoảng năm {1} đến {2}"),
    ("a period is at most {} days", "Một kỳ dài nhiều nhất {0} ngày"),
    ("at most {} presses at once", "Nhiều nhất {0} lượt bấm một lần"),
    ("date {} must be YYYY-MM-DD", "Ngày {0} phải viết YYYY-MM-DD"),
    ("exports are .csv or .xlsx", "Chỉ xuất được .csv hoặc .xlsx"),
    ("csv must be one of {}", "Kiểu CSV phải là một trong {0} (excel: cho Excel tiếng Việt; data: cho phần mềm)"),
    (
        "log in, or send HTTP Basic credentials or an API token",
        "Hãy đăng nhập, hoặc gửi thông tin HTTP Basic hay mã truy cập API",
    ),
    ("malformed Basic credentials", "Thông tin đăng nhập Basic sai dạng"),
    (
        "more than {} ratings fit no spreadsheet: take the CSV or a shorter period",
        "Hơn {0} lượt đánh giá không vừa một bảng tính: hãy lấy CSV hoặc một kỳ ngắn hơn",
    ),
    ("name a unit or a counter to compare", "Hãy chọn một đơn vị hoặc một quầy để so sánh"),
    ("no action {}", "Không có thao tác {0}"),
    ("no counter {}", "Không có quầy {0}"),
    ("no kiosk {}", "Không có thiết bị {0}"),
    ("no officer {}", "Không có cán bộ {0}"),
    ("no snapshot for that rating", "Lượt đánh giá này không có ảnh"),
    ("no such alert", "Không có cảnh báo này"),
    ("no such counter", "Không có quầy này"),
    ("no such duty", "Không có ca trực này"),
    ("no such press", "Không có lượt bấm này"),
    ("no such unit", "Không có đơn vị này"),
    ("no unit {}", "Không có đơn vị {0}"),
    ("no {} {}", "Không có {0} {1}"),
    ("page {}: a whole number from 1", "Trang {0}: phải là số nguyên từ 1"),
    ("reason must be one of {}", "Lý do phải là một trong {0}"),
    ("state must be one of {}", "Trạng thái phải là một trong {0}"),
    ("the comment is longer than 1000 characters", "Ghi chú dài quá 1000 ký tự"),
    ("the form expired; reload the page and try again", "Biểu mẫu đã hết hạn; hãy tải lại trang và thử lại"),
    ("the picture of that press is no longer kept", "Ảnh của lượt bấm này không còn được lưu"),
    (
        "the registry is shared by the whole tree: only an admin of its top unit edits it",
        "Danh mục dùng chung cho cả cây đơn vị: chỉ quản trị viên của đơn vị cao nhất được sửa",
    ),
    ("the three-level form is .xlsx or .pdf", "Mẫu 3 mức chỉ có .xlsx hoặc .pdf"),
    ("this account cannot use the API", "Tài khoản này không được dùng API"),
    ("this needs the {} role", "Việc này cần vai trò {0}"),
    (
        "press {} was reviewed already by {}; nothing was reviewed",
        "Lượt bấm {0} đã được {1} xem xét; không lượt nào được ghi thêm",
    ),
    ("the file holds no duty", "Tệp không có ca trực nào"),
    (
        "{}: [[{}]] {}: {} holds a control or formatting character",
        "{0}: [[{1}]] {2}: {3} chứa ký tự điều khiển hoặc định dạng",
    ),
    ("tick at least one press to review", "Hãy chọn ít nhất một lượt bấm để xem xét"),
    ("unknown or revoked API token", "Mã truy cập API không có hoặc đã bị thu hồi"),
    (
        "a value in the address is not what this page takes: {}",
        "Một giá trị trong địa chỉ không đúng loại trang này nhận: {0}",
    ),
    ("Not Found", "Không tìm thấy trang này"),
    ("Method Not Allowed", "Trang này không nhận cách gửi đó"),
)


def _values(parts: list[str], message: str) -> list[str] | None:
    """The values of ``message`` where its English template (split at ``{}``) has them, each at
    least one character, or None when it is not that message. Each literal part is looked for
    once, leftmost (what a lazy regex would take): linear in the message, where a regex of lazy
    groups backtracked for seconds on a crafted 2 KB message with many separators."""
    if len(parts) == 1:
        return [] if message == parts[0] else None
    head, *middle, tail = parts
    end = len(message) - len(tail)
    if not (message.startswith(head) and message.endswith(tail)) or end <= len(head):
        return None
    values, at = [], len(head)
    for literal in middle:
        found = message.find(literal, at + 1, end)
        if found < 0:
            return None
        values.append(message[at:found])
        at = found + len(literal)
    if at >= end:
        return None
    values.append(message[at:end])
    return values


_ERRORS = [(english.split("{}"), vietnamese) for english, vietnamese in ERRORS_VI]


def error(message: str, lang: str, _depth: int = 0) -> str:
    """A message of the code in the reader's language (Vietnamese from ERRORS_VI; as it is otherwise)."""
    if lang != "vi" or _depth > 2:
        return message
    if _depth and f"rule_{message}" in _TEXT:  # a rule's key in a message: its name on the rules page
        return text(f"rule_{message}", lang)
    for parts, vietnamese in _ERRORS:
        values = _values(parts, message)
        if values is not None:
            return vietnamese.format(*(error(value, lang, _depth + 1) for value in values))
    return message
