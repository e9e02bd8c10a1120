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
    "heatmap": ("Số lượt theo giờ và thứ", "Ratings by hour and weekday"),
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
}

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
